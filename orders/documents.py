"""Order documents as PDF: the invoice (faktur) and the delivery note (surat jalan)."""
