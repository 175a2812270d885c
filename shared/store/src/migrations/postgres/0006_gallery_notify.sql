-- Readers that keep rendered listings (list-images) learn of every change
-- from the database itself. Whatever changes what a listing shows (a verdict,
-- a refusal, a relabel, the end of an ingestion run) also updates the one row
-- of gallery_state in the same transaction, so a trigger on that row sends a
-- notification, which PostgreSQL delivers when, and only if, the transaction
-- commits. Lease changes alone show nothing and notify no one.
CREATE FUNCTION catdog_notify_gallery_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('catdog_gallery', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER gallery_changed
AFTER UPDATE ON gallery_state
FOR EACH ROW
WHEN ((to_jsonb(OLD) - 'lease_holder' - 'lease_until')
      IS DISTINCT FROM (to_jsonb(NEW) - 'lease_holder' - 'lease_until'))
EXECUTE FUNCTION catdog_notify_gallery_changed();
