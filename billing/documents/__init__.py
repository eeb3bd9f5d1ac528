"""Renderers of billing documents: ``pdf`` (invoices, credit notes, receipt vouchers),
``einvoice`` (INV-01 JSON), ``exports`` (CSV), ``charts`` (the portal's SVG usage charts).

They read what services and selectors wrote; none of them writes.
"""
