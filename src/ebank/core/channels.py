"""The e-banking channels (DOMAIN.md §1, §3) and the names customers know them by."""

E_CHANNELS = ("online", "mobile", "phone", "sms")  # the channels a customer enrols for
NAMES_ZH = {
    "online": "网上银行", "mobile": "手机银行", "phone": "电话银行", "sms": "短信银行",
    "corporate": "企业网银",
}  # fmt: skip
