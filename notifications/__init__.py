"""Notifications and outbound webhooks: a consumer of committed audit events.

The audit log is the one stream of "what happened". A relay (``relay_audit_events``,
beat) walks new ``AuditEvent`` rows by id behind a stored cursor, maps each action
to an event type (``notifications.events.AUDIT_ROUTES``) and writes in-portal
notifications, emails to send and webhook deliveries in the same transaction as
the cursor moves. Nothing imports this app back. See docs/NOTIFICATIONS.md.
"""
