"""GST rules (shared/GST.md) exact to the paisa, GSTIN validation, and
property tests of the tax arithmetic."""

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.choices import Regime, SupplyType
from billing.gst import (
    ENDORSEMENTS,
    Customer,
    GSTINError,
    document_totals,
    financial_year,
    gstin_check_char,
    tax_heads,
    treatment,
    validate_gstin,
)
from billing.money import amount_in_words, format_inr
from tests.fixtures.billing import make_gstin

D = Decimal
SUPPLIER = "27"  # Maharashtra, as in GST.md's worked example


def invoice_for(customer: Customer, *, taxable="1000.00", rate="18", lut=False, lut_for_sez=False):
    how = treatment(supplier_state=SUPPLIER, customer=customer, lut=lut, lut_for_sez=lut_for_sez)
    heads = tax_heads(taxable=D(taxable), gst_rate=D(rate), regime=how.regime)
    return how, heads, document_totals([heads])


class TestWorkedExample:
    """GST.md: supplier in Maharashtra (27), taxable value 1000.00."""

    def test_customer_in_maharashtra_registered(self):
        how, heads, totals = invoice_for(Customer(state_code="27", gstin=make_gstin("27")))
        assert (how.place_of_supply, how.supply_type, how.regime) == ("27", SupplyType.B2B, Regime.INTRA)
        assert (heads.cgst, heads.sgst, heads.igst) == (D("90.00"), D("90.00"), D("0.00"))
        assert (heads.cgst_rate, heads.sgst_rate) == (D("9"), D("9"))
        assert totals.total == D("1180.00") and totals.round_off == D("0.00")

    def test_customer_in_maharashtra_unregistered(self):
        how, heads, totals = invoice_for(Customer(state_code="27"))
        assert (how.place_of_supply, how.supply_type) == ("27", SupplyType.B2C)
        assert (heads.cgst, heads.sgst, heads.igst, totals.total) == (D("90.00"), D("90.00"), D("0"), D("1180.00"))

    def test_registered_in_karnataka(self):
        how, heads, totals = invoice_for(Customer(state_code="29", gstin=make_gstin("29")))
        assert (how.place_of_supply, how.regime) == ("29", Regime.INTER)
        assert (heads.cgst, heads.sgst, heads.igst, totals.total) == (D("0"), D("0"), D("180.00"), D("1180.00"))

    def test_unregistered_with_an_address_in_karnataka(self):
        how, heads, totals = invoice_for(Customer(state_code="29"))
        assert (how.place_of_supply, how.supply_type, how.regime) == ("29", SupplyType.B2C, Regime.INTER)
        assert (heads.igst, totals.total) == (D("180.00"), D("1180.00"))

    def test_abroad_under_lut_is_zero_rated_with_the_endorsement(self):
        how, heads, totals = invoice_for(Customer(country="US", state_code="96"), lut=True)
        assert (how.place_of_supply, how.supply_type, how.regime) == ("96", SupplyType.EXPWOP, Regime.ZERO_RATED)
        assert (heads.igst, heads.tax, totals.total) == (D("0.00"), D("0.00"), D("1000.00"))
        assert how.endorsement == (
            "SUPPLY MEANT FOR EXPORT UNDER LETTER OF UNDERTAKING WITHOUT PAYMENT OF INTEGRATED TAX"
        )

    def test_abroad_with_igst_paid(self):
        how, heads, totals = invoice_for(Customer(country="GB", state_code="96"), lut=False)
        assert (how.place_of_supply, how.supply_type, how.regime) == ("96", SupplyType.EXPWP, Regime.INTER)
        assert (heads.igst, totals.total) == (D("180.00"), D("1180.00"))
        assert how.endorsement == ENDORSEMENTS[SupplyType.EXPWP]

    def test_sez_in_the_suppliers_own_state_pays_igst(self):
        how, heads, totals = invoice_for(Customer(state_code="27", gstin=make_gstin("27"), is_sez=True))
        assert (how.place_of_supply, how.supply_type, how.regime) == ("27", SupplyType.SEZWP, Regime.INTER)
        assert (heads.cgst, heads.sgst, heads.igst, totals.total) == (D("0"), D("0"), D("180.00"), D("1180.00"))

    def test_sez_under_lut_when_the_operator_chose_it(self):
        how, heads, totals = invoice_for(
            Customer(state_code="29", gstin=make_gstin("29"), is_sez=True), lut=True, lut_for_sez=True
        )
        assert (how.supply_type, how.regime, totals.total) == (SupplyType.SEZWOP, Regime.ZERO_RATED, D("1000.00"))

    def test_lut_does_not_apply_to_sez_by_default(self):
        how, *_ = invoice_for(Customer(state_code="29", gstin=make_gstin("29"), is_sez=True), lut=True)
        assert how.supply_type == SupplyType.SEZWP

    def test_no_address_falls_back_to_the_suppliers_state(self):
        how, heads, _ = invoice_for(Customer())
        assert (how.place_of_supply, how.regime, heads.cgst) == ("27", Regime.INTRA, D("90.00"))

    def test_union_territory_without_legislature_uses_utgst(self):
        how = treatment(supplier_state="04", customer=Customer(state_code="04"), lut=False)
        assert (how.regime, how.state_tax_label) == (Regime.INTRA, "UTGST")
        delhi = treatment(supplier_state="07", customer=Customer(state_code="07"), lut=False)
        assert delhi.state_tax_label == "SGST"


def test_heads_round_half_up_independently():
    # 0.25 * 9% = 0.0225 -> 0.02 each; IGST 0.25 * 18% = 0.045 -> 0.05 (not 2 * 0.02)
    intra = tax_heads(taxable=D("0.25"), gst_rate=D("18"), regime=Regime.INTRA)
    inter = tax_heads(taxable=D("0.25"), gst_rate=D("18"), regime=Regime.INTER)
    assert (intra.cgst, intra.sgst, inter.igst) == (D("0.02"), D("0.02"), D("0.05"))
    # 12.50 * 9% = 1.125 -> 1.13 (half up, not banker's 1.12)
    assert tax_heads(taxable=D("12.50"), gst_rate=D("18"), regime=Regime.INTRA).cgst == D("1.13")


def test_round_off_line():
    heads = tax_heads(taxable=D("1234.56"), gst_rate=D("18"), regime=Regime.INTER)  # IGST 222.22
    totals = document_totals([heads])
    assert totals.before_round_off == D("1456.78")
    assert (totals.round_off, totals.total) == (D("0.22"), D("1457"))
    half = document_totals([tax_heads(taxable=D("0.50"), gst_rate=D("0"), regime=Regime.INTER)])
    assert (half.round_off, half.total) == (D("0.50"), D("1"))


class TestGSTIN:
    def test_the_example_in_gst_md_is_valid(self):
        assert gstin_check_char("27AAPFU0939F1Z") == "V"
        assert validate_gstin("27AAPFU0939F1ZV") == "27AAPFU0939F1ZV"

    @pytest.mark.parametrize(
        "value, message",
        [
            ("27AAPFU0939F1ZX", "check) character does not match"),
            ("27aapfu0939f1zv", "capital letters: 27AAPFU0939F1ZV"),
            ("27AAPFU0939F1Z", "15 characters; this one has 14"),
            ("27AAPFU0939F1ZVV", "15 characters; this one has 16"),
            ("", "Enter a GSTIN"),
            ("25AAPFU0939F1ZV", "25 is not a GST state code"),
            ("28AAPFU0939F1ZV", "28 is not a GST state code"),
            ("99AAPFU0939F1ZV", "99 is not a GST state code"),
            ("27AAPF10939F1ZV", "PAN (5 letters, 4 digits, 1 letter)"),
            ("27AAPFU0939F0ZV", "entity number"),
            ("27AAPFU0939F1Z-", "only digits and capital letters"),
        ],
    )
    def test_invalid_gstins_have_clear_messages(self, value, message):
        with pytest.raises(GSTINError, match=message.replace("(", r"\(").replace(")", r"\)")):
            validate_gstin(value)

    @pytest.mark.parametrize("state", ["01", "26", "37", "38", "96", "97"])
    def test_every_listed_state_code_is_accepted(self, state):
        assert validate_gstin(make_gstin(state)) == make_gstin(state)

    def test_a_single_changed_character_is_caught(self):
        good = "27AAPFU0939F1ZV"
        for index in range(2, 14):
            for char in "ABC123":
                typo = good[:index] + char + good[index + 1 :]
                if typo != good and typo[2:12].isalnum():
                    try:
                        validate_gstin(typo)
                    except GSTINError:
                        continue
                    raise AssertionError(f"{typo} accepted")


def test_financial_year():
    assert financial_year(date(2025, 4, 1)) == "2025-26"
    assert financial_year(date(2026, 3, 31)) == "2025-26"
    assert financial_year(date(2099, 12, 1)) == "2099-00"


def test_indian_formatting_and_words():
    assert format_inr(D("1234567.8")) == "12,34,567.80"
    assert format_inr(D("-999")) == "-999.00"
    assert amount_in_words(D("1180")) == "Rupees One Thousand One Hundred Eighty Only"
    assert amount_in_words(D("12345678.05")) == (
        "Rupees One Crore Twenty Three Lakh Forty Five Thousand Six Hundred Seventy Eight and Five Paise Only"
    )


# --- properties -----------------------------------------------------------------

money = st.decimals(min_value=D("0.00"), max_value=D("10000000"), places=2, allow_nan=False, allow_infinity=False)
rates = st.sampled_from([D("0"), D("0.25"), D("3"), D("5"), D("12"), D("18"), D("28")])
regimes = st.sampled_from(list(Regime))


@given(st.lists(st.tuples(money, rates), min_size=1, max_size=30), regimes)
def test_heads_sum_to_the_invoice_tax_and_totals_are_sums_of_lines(lines, regime):
    heads = [tax_heads(taxable=taxable, gst_rate=rate, regime=regime) for taxable, rate in lines]
    totals = document_totals(heads)
    assert totals.tax == totals.cgst + totals.sgst + totals.igst == sum(h.tax for h in heads)
    assert totals.taxable == sum(taxable for taxable, _ in lines)
    assert totals.total == totals.taxable + totals.tax + totals.round_off
    assert totals.total == totals.total.to_integral_value()
    assert D("-0.99") <= totals.round_off <= D("0.99")
    for head, (taxable, rate) in zip(heads, lines, strict=True):
        if regime == Regime.INTRA:
            assert head.cgst == head.sgst == (taxable * rate / 200).quantize(D("0.01"), rounding="ROUND_HALF_UP")
            assert head.igst == 0
        elif regime == Regime.INTER:
            assert head.igst == (taxable * rate / 100).quantize(D("0.01"), rounding="ROUND_HALF_UP")
            assert head.cgst == head.sgst == 0
        else:
            assert head.tax == 0
            continue
        # Each head is within half a paisa of its exact value.
        assert abs(head.tax - taxable * rate / 100) <= D("0.005") * (2 if regime == Regime.INTRA else 1)


@given(
    st.sampled_from(sorted({"01", "07", "27", "29", "33", "36", "96", "97"})),
    st.text("ABCDEFGHJKLMNPQRSTUVWXYZ", min_size=5, max_size=5),
)
def test_generated_gstins_validate_and_any_other_check_char_fails(state, letters):
    gstin = make_gstin(state, pan=f"{letters}1234F")
    assert validate_gstin(gstin) == gstin
    for char in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        if char != gstin[-1]:
            with pytest.raises(GSTINError):
                validate_gstin(gstin[:-1] + char)
