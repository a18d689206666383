-- What the Refer and Monitor convictions read needs: the conviction date and main offence of
-- an event, and the expected end of its sentence.
ALTER TABLE delius.event
    ADD COLUMN conviction_date date,
    ADD COLUMN main_offence_category text,
    ADD COLUMN main_offence_sub_category text;
ALTER TABLE delius.disposal
    ADD COLUMN expected_end_date date;
