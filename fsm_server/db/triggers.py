"""References PostgreSQL checks a statement at a time instead of a row at a time.

A foreign key checks each inserted row on its own: storing a period of 40,000 billed meters ran
80,000 such checks (looking up and locking the same period row 40,000 times and each device 4
times), about as long as computing the meters. On PostgreSQL ``billing_meter``'s references to its
period and its device are kept by statement-level triggers instead (migration m029): after each
INSERT or UPDATE, one query over the statement's new rows locks the rows they refer to as a foreign
key check does (FOR KEY SHARE) and refuses the statement, with SQLSTATE 23503 as a foreign key does,
when one of them is missing; deleting a period or a device deletes its meters (ON DELETE CASCADE),
one statement for all the rows deleted. SQLite keeps the foreign keys: its checks are cheap.

``REFERENCES`` names them for whatever needs the tables' order (backup loads parents first).
"""

from __future__ import annotations

#: child table -> {column: parent table} of the references kept by these triggers.
REFERENCES: dict[str, dict[str, str]] = {
    "billing_meter": {"period_id": "billing_period", "device_id": "device"}
}

# No "%" in these: psycopg would read it as a parameter.
CHECK_FUNCTION = """
CREATE OR REPLACE FUNCTION billing_meter_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing bigint;
BEGIN
    PERFORM 1 FROM billing_period p WHERE p.id IN (SELECT DISTINCT period_id FROM new_meters)
        FOR KEY SHARE;
    PERFORM 1 FROM device d WHERE d.id IN (SELECT DISTINCT device_id FROM new_meters) FOR KEY SHARE;
    SELECT n.id INTO missing FROM new_meters n
    WHERE NOT EXISTS (SELECT 1 FROM billing_period p WHERE p.id = n.period_id)
       OR NOT EXISTS (SELECT 1 FROM device d WHERE d.id = n.device_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation', MESSAGE = 'billing_meter ' || missing
            || ' refers to a billing period or a device that does not exist';
    END IF;
    RETURN NULL;
END $$
"""

CASCADE_FUNCTION = """
CREATE OR REPLACE FUNCTION billing_meter_cascade() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'billing_period' THEN
        DELETE FROM billing_meter WHERE period_id IN (SELECT id FROM gone);
    ELSE
        DELETE FROM billing_meter WHERE device_id IN (SELECT id FROM gone);
    END IF;
    RETURN NULL;
END $$
"""

#: (name, table, event, transition table, function) of each trigger
TRIGGERS = (
    (
        "billing_meter_references_insert",
        "billing_meter",
        "INSERT",
        "NEW TABLE AS new_meters",
        "billing_meter_references",
    ),
    (
        "billing_meter_references_update",
        "billing_meter",
        "UPDATE",
        "NEW TABLE AS new_meters",
        "billing_meter_references",
    ),
    (
        "billing_period_meters_cascade",
        "billing_period",
        "DELETE",
        "OLD TABLE AS gone",
        "billing_meter_cascade",
    ),
    ("device_billing_meters_cascade", "device", "DELETE", "OLD TABLE AS gone", "billing_meter_cascade"),
)

#: The foreign keys the triggers replace (the names PostgreSQL gave them at m015).
FOREIGN_KEYS = ("billing_meter_period_id_fkey", "billing_meter_device_id_fkey")


def statements() -> list[str]:
    """What makes the triggers on PostgreSQL, in order, on a database whose billing_meter still has
    its foreign keys or already has the triggers."""
    return [
        *(f'ALTER TABLE billing_meter DROP CONSTRAINT IF EXISTS "{name}"' for name in FOREIGN_KEYS),
        CHECK_FUNCTION,
        CASCADE_FUNCTION,
        *(f'DROP TRIGGER IF EXISTS "{name}" ON {table}' for name, table, *_ in TRIGGERS),
        *(
            f'CREATE TRIGGER "{name}" AFTER {event} ON {table} REFERENCING {transition} '
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            for name, table, event, transition, function in TRIGGERS
        ),
    ]


__all__ = ["REFERENCES", "statements"]
