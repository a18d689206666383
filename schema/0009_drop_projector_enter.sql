-- `projector_enter` (0008) is no longer called: a live projector batch now begins with the
-- swap lock taken in its `BEGIN` and reads its checkpoint and events in one statement.
DROP FUNCTION IF EXISTS projector_enter(text, text);
