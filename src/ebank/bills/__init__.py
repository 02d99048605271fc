"""Bill payment (代缴费): billers, bill inquiry, payment, and telling the biller."""
