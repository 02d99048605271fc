"""E-banking enrolment (签约) per channel, with the limits the customer agreed."""
