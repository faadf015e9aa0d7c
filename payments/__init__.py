"""Payments: card payments through Stripe, bank transfers, pay on pickup, and refunds.

It knows which orders are paid, exactly once, and tells the money package (`finance`) through
two events, payment received and refund; it never computes shares itself.
"""
