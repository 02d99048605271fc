"""Domain errors with stable codes and messages in zh-CN and English.

Channels map them: the API to HTTP status + `{"code", "message", "details"}`, the web to a
readable page, SMS to a short reply. A code never changes meaning once published.
"""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ErrorKind:
    status: int
    zh: str
    en: str
    # One code, several wordings: the detail named `by` picks a (zh, en) pair from `variants`.
    by: str = ""
    variants: dict[str, tuple[str, str]] = field(default_factory=dict)


# Messages may use {placeholders} filled from the error's details.
CATALOGUE: dict[str, ErrorKind] = {
    "INVALID_INPUT": ErrorKind(400, "输入有误：{reason}", "Invalid input: {reason}"),
    "INVALID_AMOUNT": ErrorKind(400, "金额格式有误：{reason}", "Invalid amount: {reason}"),
    "UNKNOWN_CURRENCY": ErrorKind(
        400, "不支持的币种 {currency}", "Unsupported currency {currency}"
    ),
    "UNBALANCED_ENTRY": ErrorKind(
        400, "借贷不平衡：{reason}", "Debits and credits do not balance: {reason}"
    ),
    "ACCOUNT_NOT_FOUND": ErrorKind(404, "账户不存在", "Account not found"),
    "ACCOUNT_EXISTS": ErrorKind(409, "账户 {code} 已存在", "Account {code} already exists"),
    "ENTRY_NOT_FOUND": ErrorKind(404, "交易记录不存在", "Journal entry not found"),
    "HOLD_NOT_FOUND": ErrorKind(404, "冻结（预授权）记录不存在", "Hold not found"),
    "INSUFFICIENT_FUNDS": ErrorKind(
        422,
        "可用余额不足，请存入资金或减少金额后重试",
        "Insufficient available balance: add funds or lower the amount and try again",
    ),
    "BALANCE_CEILING": ErrorKind(
        422,
        "入账后将超过该账户的余额上限（如Ⅲ类户不超过2000元），请减少金额或升级账户",
        "This would take the account above its balance limit (e.g. ¥2,000 for a Type III "
        "account): lower the amount or upgrade the account",
    ),
    "ACCOUNT_FROZEN": ErrorKind(
        422,
        "账户已冻结，只收不付；请联系开户行",
        "The account is frozen and can only receive funds; please contact your branch",
    ),
    "ACCOUNT_SUSPENDED": ErrorKind(
        422,
        "账户已暂停非柜面业务，请本人携身份证件到柜台办理",
        "Non-counter business on this account is suspended; please visit a branch with your ID",
    ),
    "ACCOUNT_DORMANT": ErrorKind(
        422,
        "账户为久悬户，请到柜台激活后再办理",
        "The account is dormant; please reactivate it at a branch first",
    ),
    "ACCOUNT_CLOSED": ErrorKind(422, "账户已销户", "The account is closed"),
    "ACCOUNT_NOT_EMPTY": ErrorKind(
        422,
        "账户仍有余额或冻结金额，不能销户",
        "The account still holds money or holds and cannot be closed",
    ),
    "INVALID_STATUS_CHANGE": ErrorKind(
        422,
        "账户状态不能从 {from_status} 变为 {to_status}",
        "Account status cannot change from {from_status} to {to_status}",
    ),
    "HOLD_NOT_PENDING": ErrorKind(
        422, "该冻结已{status}，不能再操作", "The hold is already {status}"
    ),
    "HOLD_EXPIRED": ErrorKind(422, "该冻结已过期", "The hold has expired"),
    "CAPTURE_EXCEEDS_HOLD": ErrorKind(
        422, "扣款金额超过剩余冻结金额", "The capture exceeds what remains of the hold"
    ),
    "ALREADY_REVERSED": ErrorKind(409, "该交易已冲正", "The entry has already been reversed"),
    "CANNOT_REVERSE_REVERSAL": ErrorKind(
        422, "冲正交易不能再冲正", "A reversal cannot itself be reversed"
    ),
    "IDEMPOTENCY_CONFLICT": ErrorKind(
        409,
        "该请求编号已用于另一笔不同的请求",
        "This idempotency key was already used for a different request",
    ),
    "CUSTOMER_EXISTS": ErrorKind(
        409, "该证件号码已开立客户信息", "A customer with this identity number already exists"
    ),
    "CUSTOMER_NOT_FOUND": ErrorKind(404, "客户不存在", "Customer not found"),
    "TYPE_I_EXISTS": ErrorKind(
        409,
        "您在本行已有Ⅰ类户，可开立Ⅱ类或Ⅲ类户",
        "You already hold a Type I account with this bank; a Type II or III account is possible",
    ),
    "APPROVAL_NOT_FOUND": ErrorKind(404, "审批请求不存在", "Approval request not found"),
    "APPROVAL_DECIDED": ErrorKind(
        409, "该审批请求已处理（{outcome}）", "The request was already decided ({outcome})"
    ),
    "SAME_MAKER_AND_CHECKER": ErrorKind(
        403, "经办与复核不能是同一人", "The checker must be someone other than the maker"
    ),
    "CARD_NOT_FOUND": ErrorKind(404, "卡片不存在", "Card not found"),
    "CARD_REPORTED_LOST": ErrorKind(
        422, "该卡已挂失，请使用新卡或到柜台补办", "This card was reported lost: use your new card"
    ),
    "CARD_FROZEN": ErrorKind(
        422, "该卡已冻结，请联系开户行", "This card is frozen: contact your branch"
    ),
    "CARD_CLOSED": ErrorKind(422, "该卡已注销", "This card is closed"),
    "CARD_EXPIRED": ErrorKind(422, "该卡已过有效期，请换卡", "This card has expired: renew it"),
    "AUTH_FAILED": ErrorKind(
        401, "登录信息或验证码有误，请核对后重试", "The details or code you entered are not right"
    ),
    "AUTH_FAILED_WARNING": ErrorKind(
        401,
        "登录信息或验证码有误，再错 {attempts_left} 次将暂时锁定",
        "The details or code you entered are not right: {attempts_left} more and it locks",
    ),
    "AUTH_FAILED_FINAL_WARNING": ErrorKind(
        401,
        "登录信息或验证码有误，再错 {attempts_left} 次将锁定，需本人到柜台解锁",
        "The details or code you entered are not right: {attempts_left} more and it locks "
        "until you visit a branch",
    ),
    "CREDENTIAL_LOCKED": ErrorKind(
        423,
        "错误次数过多，已暂时锁定，请于 {until} 后再试",
        "Too many wrong attempts: locked until {until}",
    ),
    "CREDENTIAL_LOCKED_PERMANENTLY": ErrorKind(
        423,
        "错误次数过多，已锁定，请本人携身份证件到柜台解锁",
        "Too many wrong attempts: locked; please visit a branch with your ID to unlock",
    ),
    "SESSION_EXPIRED": ErrorKind(
        401, "登录已超时或已退出，请重新登录", "Your session has ended: please log in again"
    ),
    "SESSION_NOT_FOUND": ErrorKind(404, "会话不存在", "Session not found"),
    "CERTIFICATE_NOT_FOUND": ErrorKind(
        404,
        "证书不存在，请到柜台申领U盾证书",
        "Certificate not found: a USB-key certificate is issued at a branch",
    ),
    "CERTIFICATE_EXPIRED": ErrorKind(
        422, "您的证书已过有效期，请更新证书", "Your certificate has expired: please renew it"
    ),
    "INVALID_CSR": ErrorKind(
        400, "证书申请有误：{reason}", "Invalid certificate request: {reason}"
    ),
    "NOT_ENROLLED": ErrorKind(
        403,
        "您尚未开通该渠道的电子银行，请到柜台签约，或用银行卡、密码和短信验证码在线自助开通",
        "You are not enrolled for this channel: enrol at a branch, or online with your card, "
        "its PIN and an SMS code",
    ),
    "ABOVE_BANK_MAXIMUM": ErrorKind(
        422,
        "超过本行允许的最高限额（日累计 ¥{daily}，单笔 ¥{per_payment}）",
        "Above the bank's maximum (¥{daily} a day, ¥{per_payment} a payment)",
    ),
    "STRONGER_FACTOR_REQUIRED": ErrorKind(
        403,
        "该交易需使用更安全的认证方式确认（短信验证码、动态口令或数字证书）",
        "This needs a stronger confirmation: an SMS code, your token or your certificate",
    ),
    "CERTIFICATE_REQUIRED": ErrorKind(
        403,
        "当日向他人转账累计超过 ¥{threshold}，需使用数字证书（U盾）确认",
        "Transfers to others above ¥{threshold} in a day need your certificate (USB key)",
    ),
    "LARGE_TRANSFER_WARNING": ErrorKind(
        428,
        "大额转账提醒：今日向他人付款将超过 ¥{threshold}。请核实收款人，谨防诈骗；确认后可继续",
        "Large transfer: today's payments to others would pass ¥{threshold}. Check who the "
        "payee is and beware of fraud; confirm to go on",
    ),
    "LIMIT_EXCEEDED": ErrorKind(
        422,
        "超过限额 ¥{cap}（今日还可支付 ¥{remaining}）",
        "Above a limit of ¥{cap} (¥{remaining} left today)",
        by="limit",
        variants={
            "channel_per_payment": (
                "超过该渠道约定的单笔限额 ¥{cap}；请减少金额，或用动态口令提高约定限额",
                "Above the per-payment limit agreed for this channel (¥{cap}): lower the "
                "amount, or raise the limit with your token",
            ),
            "channel_daily": (
                "超过该渠道约定的日累计限额 ¥{cap}（今日还可支付 ¥{remaining}）；"
                "请明日再付，或用动态口令提高约定限额",
                "Above the daily limit agreed for this channel (¥{cap}; ¥{remaining} left "
                "today): pay tomorrow, or raise the limit with your token",
            ),
            "sms_daily": (
                "超过短信验证码的日累计限额 ¥{cap}（今日还可 ¥{remaining}）；"
                "请改用动态口令或数字证书",
                "Above the daily limit for SMS codes (¥{cap}; ¥{remaining} left today): use "
                "your token or certificate",
            ),
            "token_daily": (
                "超过动态口令的日累计限额 ¥{cap}（今日还可 ¥{remaining}）；请明日再付或到柜台办理",
                "Above the daily limit for token codes (¥{cap}; ¥{remaining} left today): pay "
                "tomorrow or at a branch",
            ),
            "certificate_daily": (
                "超过数字证书的日累计限额 ¥{cap}（今日还可 ¥{remaining}）；"
                "请改用动态口令或到柜台办理",
                "Above the daily limit for certificates (¥{cap}; ¥{remaining} left today): use "
                "your token or pay at a branch",
            ),
            "uncertified_per_payment": (
                "未使用数字证书的网上支付单笔不超过 ¥{cap}；请使用数字证书（U盾）支付",
                "Internet payments without a certificate are at most ¥{cap} each: pay with "
                "your certificate (USB key)",
            ),
            "uncertified_daily": (
                "未使用数字证书的网上支付每日累计不超过 ¥{cap}（今日还可 ¥{remaining}）；"
                "请使用数字证书（U盾）支付",
                "Internet payments without a certificate are at most ¥{cap} a day (¥{remaining} "
                "left today): pay with your certificate (USB key)",
            ),
            "tier_daily": (
                "超过{tier}类账户的日累计限额 ¥{cap}（今日还可 ¥{remaining}）；请使用Ⅰ类账户支付",
                "Above the daily limit of a Type {tier} account (¥{cap}; ¥{remaining} left "
                "today): pay from your Type I account",
            ),
            "tier_yearly": (
                "超过{tier}类账户的年累计限额 ¥{cap}（本年还可 ¥{remaining}）；请使用Ⅰ类账户支付",
                "Above the yearly limit of a Type {tier} account (¥{cap}; ¥{remaining} left "
                "this year): pay from your Type I account",
            ),
        },
    ),
    "AUTH_REQUIRED": ErrorKind(401, "请先登录", "Please log in first"),
    "FORBIDDEN": ErrorKind(403, "您无权办理该业务", "You are not allowed to do this"),
    "STAFF_EXISTS": ErrorKind(
        409, "用户名 {username} 已被使用", "The username {username} is already taken"
    ),
    "DEVICE_NOT_FOUND": ErrorKind(404, "设备不存在或未绑定", "Device not found"),
    "TOO_MANY_DEVICES": ErrorKind(
        422,
        "最多可绑定 {limit} 台设备，请先解绑不再使用的设备",
        "At most {limit} devices can be bound: unbind one you no longer use first",
    ),
    "DEVICE_NOT_BOUND": ErrorKind(
        403,
        "本设备尚未绑定手机银行：请先绑定，登录时为设备命名，并输入发到您手机的短信验证码",
        "This device is not bound to your mobile banking: bind it first by logging in with a "
        "name for the device and the SMS code we send to your phone",
    ),
    "PAYMENT_NOT_FOUND": ErrorKind(404, "该笔支付不存在", "Payment not found"),
    "PAYEE_NOT_FOUND": ErrorKind(
        422,
        "收款账户不存在，请核对收款账号后重试",
        "The payee account does not exist: check the account number and try again",
    ),
    "PAYEE_NAME_MISMATCH": ErrorKind(
        422,
        "收款人户名与账号不符，请向收款人核实户名后重试",
        "The payee name does not match the account: check the name with the payee and retry",
    ),
    "PAYEE_ACCOUNT_UNAVAILABLE": ErrorKind(
        422,
        "收款账户状态异常，暂不能入账，请联系收款人",
        "The payee account cannot receive money at present: please contact the payee",
    ),
    "PAYEE_BANK_REJECTED": ErrorKind(
        422,
        "收款行退回了这笔转账，款项已退回您的账户，请核对收款信息",
        "The payee's bank returned the transfer; the money is back in your account. "
        "Please check the payee details",
    ),
    "NOT_A_PAYMENT_ACCOUNT": ErrorKind(
        422,
        "定期账户不能直接转账，请先转存为活期",
        "A term deposit cannot pay: move the money to a demand account first",
    ),
    "PAYMENT_NOT_REVOCABLE": ErrorKind(
        409,
        "该笔转账已发出或已结束，不能撤销",
        "This transfer has already been sent or has ended and cannot be revoked",
    ),
    "INTERBANK_UNAVAILABLE": ErrorKind(
        503,
        "跨行转账暂不可用，请稍后再试或使用本行转账",
        "Transfers to other banks are unavailable at present: try again later",
    ),
    "CLEARING_MESSAGE_INVALID": ErrorKind(
        400, "清算报文有误：{reason}", "Invalid clearing message: {reason}"
    ),
    "CLEARING_UNAUTHENTICATED": ErrorKind(
        401,
        "清算报文认证失败（签名错误或已过期）",
        "The clearing message is not authenticated (bad or stale signature)",
    ),
    "RECEIPT_NOT_FOUND": ErrorKind(
        404,
        "未找到该电子回单，请核对回单编号或验证码",
        "No such receipt: check the receipt number or verification code",
    ),
    "RECEIPT_UNAVAILABLE": ErrorKind(
        409,
        "该电子回单暂时无法提供，请联系客服",
        "This receipt cannot be provided at the moment; please contact customer service",
    ),
    "STAFF_NOT_FOUND": ErrorKind(404, "该员工登录账号不存在", "No such staff login"),
    "STAFF_OWN_LOGIN": ErrorKind(
        403,
        "不能对自己的登录账号执行此操作，请由另一位管理员办理",
        "You cannot do this to your own login: another admin must",
    ),
    "BILLER_NOT_FOUND": ErrorKind(
        404,
        "未找到该缴费单位，请从缴费单位列表中选择",
        "No such biller: choose one from the list of billers",
    ),
    "BILLER_EXISTS": ErrorKind(
        409, "缴费单位代码 {code} 已存在", "A biller with code {code} already exists"
    ),
    "BILL_ACCOUNT_NOT_FOUND": ErrorKind(
        404,
        "缴费单位查无此户号，请核对账单或缴费通知上的户号后重试",
        "The biller has no such customer number: check the number on your bill and try again",
    ),
    "BILL_NOT_FOUND": ErrorKind(
        404,
        "未找到该账单，请重新查询账单后从查询结果中缴费",
        "No such bill: look your bills up again and pay one from the result",
    ),
    "BILL_ALREADY_PAID": ErrorKind(
        409, "该账单已缴清，无需重复缴费", "This bill is already paid: there is nothing to pay"
    ),
    "BILL_AMOUNT_MISMATCH": ErrorKind(
        422,
        "账单须全额缴纳，请按查询到的账单金额缴费",
        "Bills are paid in full: pay exactly the amount your bill inquiry shows",
    ),
    "TOPUP_AMOUNT_NOT_OFFERED": ErrorKind(
        422,
        "话费充值金额须为以下面额之一（元）：{amounts}",
        "A phone top-up is one of these amounts (yuan): {amounts}",
    ),
    "BILLER_REFUSED": ErrorKind(
        422,
        "缴费单位未受理这笔缴费，款项已退回您的账户；请向缴费单位核实户号状态后再缴",
        "The biller did not accept this payment and the money is back in your account: check "
        "your account with the biller before paying again",
    ),
    "BILLER_UNAVAILABLE": ErrorKind(
        503,
        "缴费单位系统暂时无法连接，请稍后再试",
        "The biller cannot be reached at present: please try again later",
    ),
    "PAYEE_ENTRY_NOT_FOUND": ErrorKind(
        404, "收款人名册中没有该收款人", "There is no such payee in your payee book"
    ),
    "PAYEE_ENTRY_EXISTS": ErrorKind(
        409,
        "该收款人已在您的收款人名册中，无需重复添加",
        "This payee is already in your payee book",
    ),
    "PAYEE_ENTRY_IN_USE": ErrorKind(
        409,
        "该收款人还有进行中的预约转账，请先撤销这些预约再删除收款人",
        "Standing orders still pay this payee: cancel them before removing the payee",
    ),
    "STANDING_ORDER_NOT_FOUND": ErrorKind(404, "预约转账不存在", "Standing order not found"),
    "MANDATE_NOT_FOUND": ErrorKind(404, "代扣协议不存在", "Direct-debit mandate not found"),
    "MANDATE_REVOKED": ErrorKind(
        422,
        "客户已解除该代扣协议，不能再扣款",
        "The customer has revoked this mandate: it can no longer be debited",
    ),
    "MANDATE_EXPIRED": ErrorKind(
        422,
        "该代扣协议已过有效期，请与客户重新签约",
        "This mandate has expired: the customer must sign a new one",
    ),
    "MANDATE_AMOUNT_EXCEEDED": ErrorKind(
        422,
        "扣款金额超过协议约定的单笔上限 ¥{max_amount}",
        "The amount is above the mandate's maximum of ¥{max_amount} per debit",
    ),
    "MANDATE_PERIOD_USED": ErrorKind(
        409,
        "该代扣协议本期（{period}）已扣过款，每期只能扣款一次",
        "This mandate was already debited in this period ({period}): once per period",
    ),
    "CREDITOR_NOT_ELIGIBLE": ErrorKind(
        422,
        "收款方须为在本行开立结算账户的企业，请核对收款方账号",
        "The creditor must be an enterprise with a settlement account at this bank: check "
        "the account number",
    ),
    "NOT_AN_ENTERPRISE": ErrorKind(
        422, "该客户不是企业客户，不能开通企业网银", "The customer is not an enterprise"
    ),
    "OPERATOR_EXISTS": ErrorKind(
        409, "操作员 {username} 已存在", "The enterprise already has an operator {username}"
    ),
    "OPERATOR_NOT_FOUND": ErrorKind(404, "操作员不存在", "No such operator"),
    "PAYROLL_BATCH_NOT_FOUND": ErrorKind(404, "代发批次不存在", "Payroll batch not found"),
    "PAYROLL_FILE_INVALID": ErrorKind(
        400,
        "代发文件无法读取：{reason}。请按模板（姓名,账号,金额,备注）整理后重新上传",
        "The payroll file cannot be read: {reason}. Please follow the template "
        "(name,account,amount,note) and upload it again",
    ),
    "PAYROLL_DUPLICATE_FILE": ErrorKind(
        409,
        "同一文件已为该账户和月份上传过（批次 {batch}），为防止重复发放已拒绝",
        "This file was already uploaded for this account and month (batch {batch}); refused "
        "so that nobody is paid twice",
    ),
    "PAYROLL_NOT_ALLOWED": ErrorKind(
        409,
        "代发批次当前状态为 {status}，不能办理此操作",
        "The payroll batch is {status}: this cannot be done now",
    ),
    "PAYROLL_NO_VALID_ROWS": ErrorKind(
        422,
        "批次中没有可发放的明细，请修改文件后重新上传",
        "The batch has no row that can be paid: correct the file and upload it again",
    ),
    "PAYROLL_OWN_BATCH": ErrorKind(
        403,
        "复核人与经办人不能是同一人，请由另一位复核操作员审批",
        "The maker cannot approve their own batch: another checker must approve it",
    ),
    "PAYROLL_DUPLICATE_ACCOUNT": ErrorKind(
        422,
        "该账号在本批次中重复出现（第{first}行），本行不发放",
        "This account already appears in the batch (line {first}); this line is not paid",
    ),
    "RISK_REJECTED": ErrorKind(
        422,
        "为保障您的资金安全，该笔交易已被拦截。如有疑问，请致电本行客服热线或携本人身份证件到网点咨询",
        "For your safety this transaction has been stopped. If you have questions, call the "
        "bank's hotline or visit a branch with your ID",
    ),
    # 422 like every refusal in the catalogue (an error is never a 2xx): not done *yet*. A
    # service that holds a payment for review should rather answer the payment itself, with
    # its status (201); this code is for answers that must be an error (an SMS reply).
    "RISK_REVIEW": ErrorKind(
        422,
        "为保障您的资金安全，该笔交易需人工核实，资金已暂时冻结，核实结果将以短信通知您",
        "For your safety this transaction is being reviewed; the money is held meanwhile and "
        "you will be told the outcome by SMS",
    ),
    "RISK_RULE_NOT_FOUND": ErrorKind(404, "风控规则不存在", "Risk rule not found"),
    "RISK_DECISION_NOT_FOUND": ErrorKind(404, "风控决策记录不存在", "Risk decision not found"),
    "RISK_CASE_NOT_FOUND": ErrorKind(404, "风险案件不存在", "Risk case not found"),
    "RISK_CASE_DECIDED": ErrorKind(
        409, "该案件已处理（{status}），不能再操作", "The case was already decided ({status})"
    ),
    "RISK_CASE_ESCALATED": ErrorKind(409, "该案件已上报", "The case has already been escalated"),
    "RISK_SAME_REVIEWER": ErrorKind(
        403,
        "上报的案件须由上报人以外的员工处理",
        "An escalated case is decided by someone other than who escalated it",
    ),
    "RISK_LIST_ENTRY_NOT_FOUND": ErrorKind(404, "名单条目不存在", "Watch-list entry not found"),
    "RISK_LIST_ENTRY_EXISTS": ErrorKind(
        409, "该对象已在此名单中", "This is already on that watch list"
    ),
    "RISK_STEP_UP": ErrorKind(
        422,
        "为保障您的资金安全，本笔交易需使用动态口令或数字证书确认，请更换认证方式后重试",
        "For your safety this payment must be confirmed with your token or certificate: "
        "choose one of them and try again",
    ),
    "MERCHANT_NOT_FOUND": ErrorKind(404, "商户不存在", "Merchant not found"),
    "MERCHANT_EXISTS": ErrorKind(
        409, "该企业已签约为商户", "This enterprise is already a merchant"
    ),
    "MERCHANT_CLOSED": ErrorKind(409, "商户已解约", "The merchant is closed"),
    "FEE_PLAN_NOT_FOUND": ErrorKind(404, "费率方案 {code} 不存在", "Fee plan {code} not found"),
    "FEE_PLAN_EXISTS": ErrorKind(409, "费率方案 {code} 已存在", "Fee plan {code} already exists"),
    "ORDER_NOT_FOUND": ErrorKind(404, "订单不存在", "Order not found"),
    "ORDER_CONFLICT": ErrorKind(
        409,
        "商户订单号已用于参数不同的另一笔订单",
        "This merchant order number was already used for an order with other parameters",
    ),
    "ORDER_STATE": ErrorKind(
        409,
        "订单当前状态为 {status}，不能执行该操作（{action}）",
        "The order is {status}: it cannot {action}",
    ),
    "ORDER_EXPIRED": ErrorKind(409, "订单已过支付期限", "The order's time to pay has passed"),
    "CAPTURE_EXCEEDS_AUTHORISATION": ErrorKind(
        409,
        "请款金额超过授权余额 {remaining}",
        "The capture exceeds what remains authorised ({remaining})",
    ),
    "REFUND_EXCEEDS_PAID": ErrorKind(
        409,
        "退款金额超过可退金额 {refundable}",
        "The refund exceeds what can be refunded ({refundable})",
    ),
    "REFUND_CONFLICT": ErrorKind(
        409,
        "退款请求号已用于参数不同的另一笔退款",
        "This refund request number was already used for a refund with other parameters",
    ),
    "REFUND_NOT_FOUND": ErrorKind(404, "退款不存在", "Refund not found"),
    "REFUND_DECIDED": ErrorKind(
        409, "该退款已处理（{status}）", "The refund was already decided ({status})"
    ),
    "ONLINE_PAYMENT_DISABLED": ErrorKind(
        403, "您已关闭网上支付功能", "Online payment is switched off for you"
    ),
    "REFUND_OWN_REQUEST": ErrorKind(
        403,
        "复核人与录入人不能是同一人，请由另一位复核员审批",
        "The entry user cannot approve their own refund: another review user must",
    ),
    "CARD_NOT_ALLOWED_ONLINE": ErrorKind(
        403, "该卡未开通网上支付", "This card is not enabled for online payment"
    ),
    # The merchant gateway's signed API. An unknown merchant, a merchant without a key and a
    # wrong signature read alike (SIGNATURE_INVALID), so the answer tells no outsider which
    # merchant numbers exist.
    "SIGNATURE_INVALID": ErrorKind(
        401, "签名验证失败：{reason}", "The request's signature does not verify: {reason}"
    ),
    "TIMESTAMP_STALE": ErrorKind(
        401,
        "请求时间戳无效或与银行时间相差超过 5 分钟，请校准时钟后重新签名",
        "The request's timestamp is not a Unix time within 5 minutes of the bank's: set your "
        "clock right and sign again",
    ),
    "NONCE_REUSED": ErrorKind(
        401,
        "该随机串（Ebank-Nonce）已使用过，请为每个请求生成新的随机串",
        "This Ebank-Nonce was used before: make a new one for every request",
    ),
    "MERCHANT_SUSPENDED": ErrorKind(
        403,
        "商户已暂停或终止网关服务，请联系开户行",
        "The merchant's gateway service is suspended or closed: please contact the bank",
    ),
    "NOTICE_NOT_FOUND": ErrorKind(404, "通知记录不存在", "Notification not found"),
    # The bank's HTML forms (the gateway's pay page): a form without the page's own token, or
    # sent after the page was forgotten; a required field left empty.
    "FORM_EXPIRED": ErrorKind(
        403,
        "页面已过期，或不是从本页面提交的；请在本页重新操作",
        "This page has expired, or the form did not come from it: please try again on this page",
    ),
    "FORM_FIELD_MISSING": ErrorKind(
        400, "请填写或选择：{label}", "Please fill in or choose: {label}"
    ),
    # Complaints (ops.complaints): a field named by `field` is shown beside it on the page.
    "COMPLAINT_NOT_FOUND": ErrorKind(404, "投诉单不存在", "Complaint not found"),
    "COMPLAINT_TEXT_INVALID": ErrorKind(
        400, "请填写 1 至 {limit} 个字符的文字", "Please write 1 to {limit} characters of text"
    ),
    "COMPLAINT_CHOICE_INVALID": ErrorKind(400, "请从列表中选择", "Please choose one from the list"),
    "COMPLAINT_OWNER_INVALID": ErrorKind(
        422,
        "处理人须为在岗且负责投诉处理的员工",
        "The owner must be an enabled member of staff who handles complaints",
    ),
    "COMPLAINT_OWNER_REQUIRED": ErrorKind(
        409, "请先指定投诉单的处理人", "Assign the complaint to someone first"
    ),
    "COMPLAINT_STATUS_REFUSED": ErrorKind(
        409,
        "投诉单当前的状态不能改为所选状态",
        "The complaint cannot move from its current status to that one",
    ),
    "COMPLAINT_CLOSED": ErrorKind(409, "投诉单已办结，不能再改派", "The complaint is closed"),
    # A customer changing their own login password or PIN (security.change_secret), and the
    # message centre's messages (notify.messages).
    "SECRET_UNCHANGED": ErrorKind(
        422, "新密码不能与原密码相同", "The new password or PIN must differ from the current one"
    ),
    "SECRET_REPEAT_MISMATCH": ErrorKind(
        400, "两次输入的新密码不一致", "The two entries of the new password or PIN differ"
    ),
    "MESSAGE_NOT_FOUND": ErrorKind(404, "消息不存在", "Message not found"),
    # One-time SMS codes (security.issue_code): an interval between two codes for one purpose,
    # and a daily cap on a customer's codes and on their wrong guesses at them.
    "CODE_TOO_SOON": ErrorKind(
        429,
        "验证码已发送，请 {seconds} 秒后再重新获取",
        "A code was just sent: please wait {seconds} seconds before asking for another",
    ),
    "CODE_DAILY_LIMIT": ErrorKind(
        429,
        "今日短信验证码次数已达上限，请明天再试，或致电本行客服",
        "You have had as many text-message codes today as we can send: please try again "
        "tomorrow, or call the bank",
    ),
    # A customer's credit lines, the new card's included, above what one member of staff
    # grants alone (cards.issue_credit_card): proposed instead (action card.issue.credit), the
    # card is issued when a second approves. `granted` is what the customer's cards hold now.
    "CREDIT_LINE_NEEDS_APPROVAL": ErrorKind(
        403,
        "该客户现有信用卡额度 ¥{granted}，加上本卡将超过单人可授予的合计 ¥{cap}，"
        "请提交另一名员工审批",
        "The customer's credit lines (¥{granted} now) with this one would come to more than "
        "¥{cap}, which needs a second member of staff: submit it for approval",
    ),
    "NOT_FOUND": ErrorKind(404, "请求的地址不存在", "No such address"),
    "METHOD_NOT_ALLOWED": ErrorKind(
        405, "该地址不支持此操作", "This address does not allow that method"
    ),
}


class EbankError(Exception):
    """An error a customer or caller can act on; never a programming fault."""

    def __init__(self, code: str, /, **details: Any) -> None:
        if code not in CATALOGUE:
            raise KeyError(f"unknown error code {code}")
        self.code = code
        self.details = details
        super().__init__(f"{code}: {self.message('en')}")

    @property
    def status(self) -> int:
        return CATALOGUE[self.code].status

    def message(self, lang: str = "zh") -> str:
        kind = CATALOGUE[self.code]
        zh, en = kind.variants.get(self.details.get(kind.by, ""), (kind.zh, kind.en))
        template = zh if lang.startswith("zh") else en
        try:
            return template.format(**self.details)
        except (KeyError, IndexError):
            return template

    def to_dict(self, lang: str = "zh") -> dict[str, Any]:
        return {"code": self.code, "message": self.message(lang), "details": self.details}


def checked_text(value: object, what: str, limit: int, *, empty: bool = False) -> str:
    """A text field stripped, or INVALID_INPUT: 1 to `limit` printable characters (none at all
    if `empty`), so that no control character reaches a record, a receipt or an SMS."""
    if not isinstance(value, str):
        raise EbankError("INVALID_INPUT", reason=f"{what} is text")
    value = value.strip()
    if (not value and not empty) or len(value) > limit or not value.isprintable():
        raise EbankError("INVALID_INPUT", reason=f"{what} is 1-{limit} printable characters")
    return value
