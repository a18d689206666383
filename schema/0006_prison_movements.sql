-- Prison movements (REFERENCE.md §4): a recall rejects a pending licence-condition transfer.
-- The seed format models a pending transfer as a flag on the condition (no transfer row of
-- its own), so the rejection is recorded on the condition: status REJECTED, decision R,
-- reason TWR and the date (the live LIC_COND_TRANSFER columns, flattened).
ALTER TABLE delius.licence_condition
    ADD COLUMN transfer_status_code text,
    ADD COLUMN transfer_decision_code text,
    ADD COLUMN transfer_reason_code text,
    ADD COLUMN transfer_status_date date;

-- Support lookups by person for movements and audits.
CREATE INDEX custody_history_custody ON delius.custody_history (custody_id);
CREATE INDEX release_custody ON delius.release (custody_id);
CREATE INDEX prison_offender_manager_offender ON delius.prison_offender_manager (offender_id);
