-- The Delius model (DESIGN.md §4). Schema `delius` holds
--   * reference (code) tables, keyed by their code string: loaded by 0003_reference_data.sql
--     (rows with last_event_position NULL) and extended by seed files through the command bus
--     (rows with the position of the event that wrote them);
--   * case tables, keyed by Delius numeric ids that are allocated when a command is decided
--     and recorded in its event, written only by the `delius` projector.
-- No foreign keys: rows arrive in the global order of the log, and a replay may rebuild a
-- table on its own. Every table carries last_event_position: the global position of the
-- event that last wrote the row (NULL for migration-loaded reference rows).
CREATE SCHEMA delius;

-- Delius ids come from these sequences when a command is decided. Seeded baseline ids must
-- stay below 10 000 000 (checked by `delius-bridge seed`).
CREATE SEQUENCE delius.offender_id_seq START WITH 10000000;
CREATE SEQUENCE delius.event_id_seq START WITH 10000000;
CREATE SEQUENCE delius.disposal_id_seq START WITH 10000000;
CREATE SEQUENCE delius.rqmnt_id_seq START WITH 10000000;
CREATE SEQUENCE delius.custody_id_seq START WITH 10000000;
CREATE SEQUENCE delius.contact_id_seq START WITH 10000000;
CREATE SEQUENCE delius.nsi_id_seq START WITH 10000000;
CREATE SEQUENCE delius.nsi_manager_id_seq START WITH 10000000;
CREATE SEQUENCE delius.nsi_status_history_id_seq START WITH 10000000;
CREATE SEQUENCE delius.enforcement_id_seq START WITH 10000000;
CREATE SEQUENCE delius.release_id_seq START WITH 10000000;
CREATE SEQUENCE delius.recall_id_seq START WITH 10000000;
CREATE SEQUENCE delius.custody_history_id_seq START WITH 10000000;
CREATE SEQUENCE delius.prison_offender_manager_id_seq START WITH 10000000;
CREATE SEQUENCE delius.responsible_officer_id_seq START WITH 10000000;
CREATE SEQUENCE delius.offender_manager_id_seq START WITH 10000000;
CREATE SEQUENCE delius.key_date_id_seq START WITH 10000000;
CREATE SEQUENCE delius.contact_alert_id_seq START WITH 10000000;
CREATE SEQUENCE delius.lic_condition_id_seq START WITH 10000000;
CREATE SEQUENCE delius.staff_id_seq START WITH 10000000;

-- ---------------------------------------------------------------- reference data
CREATE TABLE delius.r_contact_type (
    code text PRIMARY KEY, description text NOT NULL,
    attendance_contact boolean NOT NULL DEFAULT false,
    national_standards_contact boolean NOT NULL DEFAULT false,
    last_event_position bigint);
CREATE TABLE delius.r_contact_outcome_type (
    code text PRIMARY KEY, description text NOT NULL,
    outcome_attendance boolean, outcome_compliant_acceptable boolean,
    last_event_position bigint);
CREATE TABLE delius.r_nsi_type (
    code text PRIMARY KEY, description text NOT NULL, last_event_position bigint);
CREATE TABLE delius.r_nsi_status (
    code text PRIMARY KEY, description text NOT NULL, contact_type_code text,
    last_event_position bigint);
CREATE TABLE delius.r_nsi_outcome (
    code text PRIMARY KEY, description text NOT NULL, last_event_position bigint);
CREATE TABLE delius.r_enforcement_action (
    code text PRIMARY KEY, description text NOT NULL, response_by_period integer,
    contact_type_code text, last_event_position bigint);
CREATE TABLE delius.r_disposal_type (
    code text PRIMARY KEY, description text NOT NULL, sentence_type text,
    ftc_limit integer, last_event_position bigint);
CREATE TABLE delius.r_requirement_main_category (
    code text PRIMARY KEY, description text NOT NULL, last_event_position bigint);
CREATE TABLE delius.r_licence_condition_main_category (
    code text PRIMARY KEY, description text NOT NULL, last_event_position bigint);
CREATE TABLE delius.r_custodial_status (
    code text PRIMARY KEY, description text NOT NULL, last_event_position bigint);
CREATE TABLE delius.r_custody_event_type (
    code text PRIMARY KEY, description text NOT NULL, last_event_position bigint);
CREATE TABLE delius.r_release_type (
    code text PRIMARY KEY, description text NOT NULL, last_event_position bigint);
CREATE TABLE delius.r_recall_reason (
    code text PRIMARY KEY, description text NOT NULL, termination_reason_code text,
    last_event_position bigint);
CREATE TABLE delius.r_termination_reason (
    code text PRIMARY KEY, description text NOT NULL, last_event_position bigint);
CREATE TABLE delius.r_key_date_type (
    code text PRIMARY KEY, description text NOT NULL, last_event_position bigint);
CREATE TABLE delius.r_pom_allocation_reason (
    code text PRIMARY KEY, description text NOT NULL, last_event_position bigint);
CREATE TABLE delius.r_transfer_reason (
    code text PRIMARY KEY, description text NOT NULL, last_event_position bigint);
CREATE TABLE delius.r_institution (
    code text PRIMARY KEY, description text NOT NULL, nomis_code text,
    immigration_removal_centre boolean NOT NULL DEFAULT false,
    secure_hospital boolean NOT NULL DEFAULT false,
    probation_area_code text, last_event_position bigint);
CREATE TABLE delius.probation_area (
    code text PRIMARY KEY, description text NOT NULL, institution_code text,
    active boolean NOT NULL DEFAULT true, last_event_position bigint);
CREATE TABLE delius.pdu (
    code text PRIMARY KEY, description text NOT NULL, probation_area_code text NOT NULL,
    last_event_position bigint);
CREATE TABLE delius.team (
    code text PRIMARY KEY, description text NOT NULL, probation_area_code text NOT NULL,
    pdu_code text, email text, telephone text, last_event_position bigint);
CREATE TABLE delius.staff (
    code text PRIMARY KEY, forename text NOT NULL, surname text NOT NULL,
    probation_area_code text NOT NULL, team_codes text[] NOT NULL DEFAULT '{}',
    username text, email text, telephone text, last_event_position bigint);
CREATE TABLE delius.office_location (
    code text PRIMARY KEY, description text NOT NULL, probation_area_code text NOT NULL,
    building_name text, building_number text, street_name text, district text, town text,
    county text, postcode text, telephone text, active boolean NOT NULL DEFAULT true,
    last_event_position bigint);

-- ---------------------------------------------------------------- case tables
CREATE TABLE delius.offender (
    offender_id bigint PRIMARY KEY,
    crn text NOT NULL UNIQUE,
    noms_number text,
    first_name text NOT NULL,
    second_name text,
    surname text NOT NULL,
    date_of_birth date NOT NULL,
    gender text,
    current_tier text,
    email text, telephone text, mobile text,
    soft_deleted boolean NOT NULL DEFAULT false,
    created_datetime timestamptz, last_updated_datetime timestamptz, last_updated_user text,
    last_event_position bigint NOT NULL);
CREATE INDEX offender_noms ON delius.offender (noms_number);

CREATE TABLE delius.event (
    event_id bigint PRIMARY KEY,
    offender_id bigint NOT NULL,
    event_number text NOT NULL,
    active boolean NOT NULL DEFAULT true,
    referral_date date,
    ftc_count integer NOT NULL DEFAULT 0,
    in_breach boolean NOT NULL DEFAULT false,
    breach_end date,
    first_release_date date,
    soft_deleted boolean NOT NULL DEFAULT false,
    created_datetime timestamptz, last_updated_datetime timestamptz, last_updated_user text,
    last_event_position bigint NOT NULL);
CREATE INDEX event_offender ON delius.event (offender_id);

CREATE TABLE delius.disposal (
    disposal_id bigint PRIMARY KEY,
    event_id bigint NOT NULL,
    disposal_type_code text NOT NULL,
    sentence_type text,
    disposal_date date NOT NULL,
    active boolean NOT NULL DEFAULT true,
    termination_date date,
    created_datetime timestamptz, last_updated_datetime timestamptz, last_updated_user text,
    last_event_position bigint NOT NULL);
CREATE INDEX disposal_event ON delius.disposal (event_id);

CREATE TABLE delius.requirement (
    requirement_id bigint PRIMARY KEY,
    disposal_id bigint NOT NULL,
    main_category_code text NOT NULL,
    active boolean NOT NULL DEFAULT true,
    created_datetime timestamptz, last_updated_datetime timestamptz, last_updated_user text,
    last_event_position bigint NOT NULL);

CREATE TABLE delius.licence_condition (
    lic_condition_id bigint PRIMARY KEY,
    disposal_id bigint NOT NULL,
    main_category_code text NOT NULL,
    start_date date NOT NULL,
    termination_date date,
    termination_reason_code text,
    pending_transfer boolean NOT NULL DEFAULT false,
    created_datetime timestamptz, last_updated_datetime timestamptz, last_updated_user text,
    last_event_position bigint NOT NULL);

CREATE TABLE delius.custody (
    custody_id bigint PRIMARY KEY,
    disposal_id bigint NOT NULL,
    custodial_status_code text NOT NULL,
    institution_code text,
    status_change_date date,
    location_change_date date,
    created_datetime timestamptz, last_updated_datetime timestamptz, last_updated_user text,
    last_event_position bigint NOT NULL);
CREATE INDEX custody_disposal ON delius.custody (disposal_id);

CREATE TABLE delius.custody_history (
    custody_history_id bigint PRIMARY KEY,
    custody_id bigint NOT NULL,
    offender_id bigint NOT NULL,
    custody_event_type_code text NOT NULL,
    detail text,
    historical_date date NOT NULL,
    created_datetime timestamptz, last_updated_datetime timestamptz, last_updated_user text,
    last_event_position bigint NOT NULL);

CREATE TABLE delius.release (
    release_id bigint PRIMARY KEY,
    custody_id bigint NOT NULL,
    offender_id bigint NOT NULL,
    release_type_code text NOT NULL,
    actual_release_date date NOT NULL,
    institution_code text,
    probation_area_code text,
    created_datetime timestamptz, last_updated_datetime timestamptz, last_updated_user text,
    last_event_position bigint NOT NULL);

CREATE TABLE delius.recall (
    recall_id bigint PRIMARY KEY,
    release_id bigint NOT NULL,
    offender_id bigint NOT NULL,
    recall_reason_code text NOT NULL,
    recall_date date NOT NULL,
    created_datetime timestamptz, last_updated_datetime timestamptz, last_updated_user text,
    last_event_position bigint NOT NULL);

CREATE TABLE delius.key_date (
    key_date_id bigint PRIMARY KEY,
    custody_id bigint NOT NULL,
    key_date_type_code text NOT NULL,
    key_date date NOT NULL,
    created_datetime timestamptz, last_updated_datetime timestamptz, last_updated_user text,
    last_event_position bigint NOT NULL);

CREATE TABLE delius.offender_manager (
    offender_manager_id bigint PRIMARY KEY,
    offender_id bigint NOT NULL,
    staff_code text NOT NULL,
    team_code text NOT NULL,
    probation_area_code text NOT NULL,
    allocation_date date,
    end_date date,
    active boolean NOT NULL DEFAULT true,
    created_datetime timestamptz, last_updated_datetime timestamptz, last_updated_user text,
    last_event_position bigint NOT NULL);

CREATE TABLE delius.prison_offender_manager (
    prison_offender_manager_id bigint PRIMARY KEY,
    offender_id bigint NOT NULL,
    staff_code text NOT NULL,
    team_code text NOT NULL,
    probation_area_code text NOT NULL,
    allocation_reason_code text,
    allocation_date timestamptz,
    end_date timestamptz,
    active boolean NOT NULL DEFAULT true,
    email_address text,
    created_datetime timestamptz, last_updated_datetime timestamptz, last_updated_user text,
    last_event_position bigint NOT NULL);

CREATE TABLE delius.responsible_officer (
    responsible_officer_id bigint PRIMARY KEY,
    offender_id bigint NOT NULL,
    prison_offender_manager_id bigint,
    offender_manager_id bigint,
    start_date timestamptz NOT NULL,
    end_date timestamptz,
    created_datetime timestamptz, last_updated_datetime timestamptz, last_updated_user text,
    last_event_position bigint NOT NULL);

CREATE TABLE delius.nsi (
    nsi_id bigint PRIMARY KEY,
    offender_id bigint NOT NULL,
    event_id bigint,
    requirement_id bigint,
    nsi_type_code text NOT NULL,
    nsi_status_code text NOT NULL,
    nsi_status_date timestamptz,
    nsi_outcome_code text,
    referral_date date NOT NULL,
    actual_start_date timestamptz,
    actual_end_date timestamptz,
    active boolean NOT NULL DEFAULT true,
    intended_provider_code text,
    external_reference text,
    notes text,
    rar_count integer,
    soft_deleted boolean NOT NULL DEFAULT false,
    created_datetime timestamptz, last_updated_datetime timestamptz, last_updated_user text,
    last_event_position bigint NOT NULL);
CREATE INDEX nsi_external_reference ON delius.nsi (external_reference);

CREATE TABLE delius.nsi_manager (
    nsi_manager_id bigint PRIMARY KEY,
    nsi_id bigint NOT NULL,
    probation_area_code text NOT NULL,
    team_code text NOT NULL,
    staff_code text NOT NULL,
    start_date timestamptz NOT NULL,
    end_date timestamptz,
    created_datetime timestamptz, last_updated_datetime timestamptz, last_updated_user text,
    last_event_position bigint NOT NULL);

CREATE TABLE delius.nsi_status_history (
    nsi_status_history_id bigint PRIMARY KEY,
    nsi_id bigint NOT NULL,
    nsi_status_code text NOT NULL,
    change_date timestamptz NOT NULL,
    notes text,
    created_datetime timestamptz, last_updated_datetime timestamptz, last_updated_user text,
    last_event_position bigint NOT NULL);

CREATE TABLE delius.contact (
    contact_id bigint PRIMARY KEY,
    offender_id bigint NOT NULL,
    event_id bigint,
    nsi_id bigint,
    requirement_id bigint,
    lic_condition_id bigint,
    contact_type_code text NOT NULL,
    contact_date date NOT NULL,
    start_time time,
    end_time time,
    outcome_code text,
    attended boolean,
    complied boolean,
    hours_credited numeric(10,2),
    rar_activity boolean,
    alert_active boolean NOT NULL DEFAULT false,
    enforcement boolean NOT NULL DEFAULT false,
    latest_enforcement_action_code text,
    linked_contact_id bigint,
    staff_code text,
    team_code text,
    probation_area_code text,
    office_location_code text,
    external_reference text,
    description text,
    notes text,
    soft_deleted boolean NOT NULL DEFAULT false,
    created_datetime timestamptz, last_updated_datetime timestamptz, last_updated_user text,
    last_event_position bigint NOT NULL);
CREATE INDEX contact_offender_date ON delius.contact (offender_id, contact_date);
CREATE INDEX contact_external_reference ON delius.contact (external_reference);
CREATE INDEX contact_nsi ON delius.contact (nsi_id);

CREATE TABLE delius.enforcement (
    enforcement_id bigint PRIMARY KEY,
    contact_id bigint NOT NULL,
    enforcement_action_code text NOT NULL,
    response_date date,
    action_taken_date date,
    action_taken_time time,
    created_datetime timestamptz, last_updated_datetime timestamptz, last_updated_user text,
    last_event_position bigint NOT NULL);

CREATE TABLE delius.contact_alert (
    contact_alert_id bigint PRIMARY KEY,
    contact_id bigint NOT NULL,
    offender_id bigint NOT NULL,
    contact_type_code text NOT NULL,
    offender_manager_id bigint,
    staff_code text,
    team_code text,
    created_datetime timestamptz, last_updated_datetime timestamptz, last_updated_user text,
    last_event_position bigint NOT NULL);
