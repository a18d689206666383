-- A live projector batch begins with one round trip instead of two: take the swap lock shared
-- (a replay swapping rebuilt tables in holds it exclusively and moves the checkpoint), then
-- read the checkpoint. The function is VOLATILE, so under READ COMMITTED its SELECT takes a
-- snapshot of its own after the lock is granted and sees the swap's checkpoint.
CREATE FUNCTION projector_enter(projector_name text, swap_lock text)
RETURNS TABLE (transaction_id bigint, global_position bigint)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtext(swap_lock));
    RETURN QUERY
        SELECT c.transaction_id, c.global_position
        FROM projector_checkpoint c
        WHERE c.projector = projector_name;
END
$$;
