"""Money helpers: paise rounding, Indian digit grouping and amounts in words.

All amounts are ``Decimal``; rounding is ROUND_HALF_UP to the paisa (GST.md).
"""

from decimal import ROUND_HALF_UP, Decimal

PAISA = Decimal("0.01")
RUPEE = Decimal("1")
ZERO = Decimal("0.00")


def paise(value: Decimal) -> Decimal:
    """Round to the paisa, half up."""
    return Decimal(value).quantize(PAISA, rounding=ROUND_HALF_UP)


def rupees(value: Decimal) -> Decimal:
    """Round to the whole rupee, half up (the invoice total after round-off)."""
    return Decimal(value).quantize(RUPEE, rounding=ROUND_HALF_UP)


def format_inr(value: Decimal) -> str:
    """``1234567.8`` → ``12,34,567.80`` (lakh/crore grouping)."""
    value = paise(value)
    sign = "-" if value < 0 else ""
    whole, fraction = f"{abs(value):.2f}".split(".")
    if len(whole) > 3:
        head, tail = whole[:-3], whole[-3:]
        groups = []
        while len(head) > 2:
            groups.insert(0, head[-2:])
            head = head[:-2]
        if head:
            groups.insert(0, head)
        whole = ",".join([*groups, tail])
    return f"{sign}{whole}.{fraction}"


_ONES = (
    "Zero One Two Three Four Five Six Seven Eight Nine Ten Eleven Twelve Thirteen Fourteen Fifteen "
    "Sixteen Seventeen Eighteen Nineteen"
).split()
_TENS = "_ _ Twenty Thirty Forty Fifty Sixty Seventy Eighty Ninety".split()


def _below_hundred(n: int) -> str:
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] + (f" {_ONES[ones]}" if ones else "")


def _below_thousand(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    words = [f"{_ONES[hundreds]} Hundred"] if hundreds else []
    if rest:
        words.append(_below_hundred(rest))
    return " ".join(words)


def _integer_words(n: int) -> str:
    if n == 0:
        return "Zero"
    parts = []
    crore, n = divmod(n, 10_000_000)
    lakh, n = divmod(n, 100_000)
    thousand, n = divmod(n, 1000)
    if crore:
        parts.append(f"{_integer_words(crore)} Crore")
    if lakh:
        parts.append(f"{_below_hundred(lakh)} Lakh")
    if thousand:
        parts.append(f"{_below_hundred(thousand)} Thousand")
    if n:
        parts.append(_below_thousand(n))
    return " ".join(parts)


def amount_in_words(value: Decimal) -> str:
    """``1180.50`` → ``Rupees One Thousand One Hundred Eighty and Fifty Paise Only``."""
    value = paise(value)
    sign = "Minus " if value < 0 else ""
    whole, fraction = divmod(int(abs(value) * 100), 100)
    text = f"{sign}Rupees {_integer_words(whole)}"
    if fraction:
        text += f" and {_below_hundred(fraction)} Paise"
    return text + " Only"
