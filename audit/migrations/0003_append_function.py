"""PostgreSQL only: ``audit_event_append``, one event appended in one statement (issue 25).

The function takes the chain's lock (the transaction-level advisory lock of
``audit.services.CHAIN_LOCK_KEY``, held until the caller's transaction ends), reads
the chain's head (the last event's hash, else the latest checkpoint's, else genesis),
takes the event's time (the caller's, or the head's when that is later: a writer that
waited for the lock never goes back in time) and inserts the event with ``hash = sha256(prev_hash || canonical payload)``: the
payload's canonical JSON as Python wrote it (``audit.chain.canonical``) with the time put in
place of ``created_at``'s placeholder, in the ISO form Python's ``isoformat()`` gives
(``audit_timestamp_iso``; no fraction when the microseconds are zero). Each statement
of a PL/pgSQL function takes a snapshot of its own under READ COMMITTED, so the head is
read after the lock is granted and sees the event its previous holder committed.
Python's ``audit.chain.event_hash`` stays the one that checks the chain.
"""

from django.db import migrations

from audit.migrations._postgresql import PostgreSQLOnly

ISO = r"""
CREATE FUNCTION audit_timestamp_iso(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN extract(microseconds FROM t)::bigint % 1000000 = 0 THEN ''
                ELSE '.' || lpad((extract(microseconds FROM t)::bigint % 1000000)::text, 6, '0') END
        || '+00:00'
$$
"""

FUNCTION = r"""
CREATE FUNCTION audit_event_append(
    p_lock_key bigint, p_payload text, p_placeholder text, p_created_at timestamptz, p_actor_user_id bigint,
    p_actor varchar, p_action varchar, p_target_type varchar, p_target_id varchar, p_target_repr varchar, p_project_id bigint,
    p_details jsonb, p_ip_address varchar, p_user_agent varchar, p_request_id varchar
) RETURNS TABLE (event_id bigint, event_created_at timestamptz, event_prev_hash varchar, event_hash varchar)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    head varchar;
    head_at timestamptz;
    at timestamptz;
    payload text;
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock_key);
    SELECT e.hash, e.created_at INTO head, head_at FROM audit_auditevent e ORDER BY e.id DESC LIMIT 1;
    IF head IS NULL THEN
        SELECT c.last_event_hash, c.last_event_created_at INTO head, head_at
        FROM audit_auditcheckpoint c ORDER BY c.last_event_id DESC LIMIT 1;
    END IF;
    head := coalesce(head, repeat('0', 64));
    at := greatest(p_created_at, head_at);
    -- The first occurrence is the top-level key: keys are sorted and the values before it
    -- (action, actor, actor_user_id) are JSON strings or numbers, with every quote escaped.
    payload := overlay(p_payload PLACING '"created_at":"' || audit_timestamp_iso(at) || '"'
                       FROM position(p_placeholder IN p_payload) FOR length(p_placeholder));
    RETURN QUERY
    INSERT INTO audit_auditevent (
        created_at, actor_user_id, actor, action, target_type, target_id, target_repr, project_id,
        details, ip_address, user_agent, request_id, prev_hash, hash
    ) VALUES (
        at, p_actor_user_id, p_actor, p_action, p_target_type, p_target_id, p_target_repr, p_project_id,
        p_details, p_ip_address, p_user_agent, p_request_id, head,
        encode(sha256(convert_to(head || payload, 'UTF8')), 'hex')
    )
    RETURNING id, created_at, prev_hash, hash;
END;
$$
"""

DROP = (
    "DROP FUNCTION audit_event_append(bigint, text, text, timestamptz, bigint, varchar, varchar, varchar, varchar,"
    " varchar, bigint, jsonb, varchar, varchar, varchar)"
)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_triggers")]

    operations = [PostgreSQLOnly([ISO, FUNCTION], [DROP, "DROP FUNCTION audit_timestamp_iso(timestamptz)"])]
