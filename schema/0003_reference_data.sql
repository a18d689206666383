-- The national Delius reference codes the four integrations rely on (domain/REFERENCE.md).
--
-- Rows loaded here carry last_event_position NULL: they are part of the schema, not of the
-- event log, so a replay never rebuilds (or deletes) them. Environment-specific reference
-- data — real prisons, local probation areas, PDUs, teams, staff and office locations — is
-- NOT loaded here: it comes from seed files (fixtures/delius/*.json) through the command bus.
--
-- Codes marked "CHOSEN" are not live Delius values: REFERENCE.md says the live code string was
-- not found, so a sensible code was chosen (listed again in ARCHITECTURE.md).
--
-- Codes REFERENCE.md names that have no code table in 0002_delius_model.sql, and so are not
-- loaded here: business interaction codes (NIBI009, CLBI003, CLBI007, TCBI002, TCBI006), the
-- MAPPA register type MAPP with its levels M0..M3 and categories X9/M1..M4, ROSH register types
-- (RMRH, RHRH, RVH), case-allocation decisions (R, A), licence-transfer status REJECTED and
-- decision R, the DTR NSI sub type.

-- ---------------------------------------------------------------- contact types
INSERT INTO delius.r_contact_type (code, description, attendance_contact, national_standards_contact) VALUES
    -- Refer and Monitor (CRS)
    ('CRSAPT',  'Appointment with CRS Provider (NS)',                true,  true),
    ('CRSSAA',  'CRS Supplier Assessment Appointment (NS)',          true,  true),
    ('CRSNOTE', 'CRS Notification',                                  false, false),
    ('NREF',    'NSI Referral',                                      false, false),
    ('NCOM',    'NSI Commenced',                                     false, false),
    ('NTER',    'NSI Terminated',                                    false, false),
    ('C091',    'NSI Status - In Progress',                          false, false),
    ('C092',    'NSI Status - Completed',                            false, false),
    ('AROM',    'Refer to Offender Manager',                         false, false),
    ('ARWS',    'Review Enforcement Status',                         false, false),
    -- Prison custody status
    ('ERCL',    'Breach / Prison Recall',                            false, false),
    ('EREL',    'Release from Custody',                              false, false),
    ('ETCP',    'Change of Institution',                             false, false),
    ('ETER',    'Component Terminated',                              false, false),
    ('ETCX',    'Component Provider Transfer Rejected',              false, false),
    ('DUS3',    'Died in Custody',                                   false, false),
    ('ERPSSR',  'PSS Breach Committal Release',                      false, false),
    -- Prison offender manager / responsible officer
    ('EPOMAT',  'Prison Offender Manager - Automatic Transfer',      false, false),
    ('EPOMIN',  'Prison Offender Manager - Internal Allocation',     false, false),
    ('EPOMEX',  'Prison Offender Manager - External Transfer',       false, false),
    ('ROC',     'Responsible Officer Change',                        false, false),
    -- Resettlement Passport appointments (CreateAppointment type -> RP1..RP8)
    ('RP1',     'Accommodation',                                     true,  false),
    ('RP2',     'Thinking and Behaviour',                            true,  false),
    ('RP3',     'Family and Community',                              true,  false),
    ('RP4',     'Drugs and Alcohol',                                 true,  false),
    ('RP5',     'Skills and Work',                                   true,  false),
    ('RP6',     'Finance',                                           true,  false),
    ('RP7',     'Health',                                            true,  false),
    ('RP8',     'Benefits',                                          true,  false),
    -- Resettlement Passport NOMIS case notes
    ('RP9',     'Immediate Needs Report',                            false, false),
    ('RP10',    'Pre-Release Report',                                false, false),
    -- CHOSEN: the newest Resettlement Passport service books every appointment with
    -- AppointmentType.Code.EXTERNAL_AGENCY, whose Delius code string was not found.
    ('EXTA',    'External Agency Appointment',                       true,  false),
    -- A generic attendance appointment for pre-existing diary entries in seeds and demos
    -- (clash checks, appointment lists). Not named by REFERENCE.md.
    ('COAP',    'Planned Office Visit (NS)',                         true,  true);

-- ---------------------------------------------------------------- contact outcomes
INSERT INTO delius.r_contact_outcome_type (code, description, outcome_attendance, outcome_compliant_acceptable) VALUES
    ('ATTC', 'Attended - Complied',                                  true,  true),
    ('AFTC', 'Attended - Failed to Comply',                          true,  false),
    ('AFTA', 'Failed to Attend',                                     false, false),
    -- A rescheduled appointment did not take place but the absence is acceptable: attended N,
    -- complied Y (MergeAppointmentIntegrationTest: the old appointment ends "attended N").
    ('RSSR', 'Rescheduled - Service Request',                        false, true),
    ('APPW', 'Appointment Withdrawn',                                false, true),
    -- CHOSEN: RESCHEDULED_POP_REQUEST, live Delius code not found. Same flags as RSSR.
    ('RSOF', 'Rescheduled - PoP Request',                            false, true),
    -- CHOSEN: SENT_HOME (no session, reason LOGISTICS), live Delius code not found.
    ('SHOM', 'Sent Home (service issues)',                           true,  true),
    -- CHOSEN: APPOINTMENT_KEPT (no session, reason POP_ACCEPTABLE), live Delius code not found.
    ('AKPT', 'Appointment Kept - Session Did Not Take Place',        true,  true);

-- ---------------------------------------------------------------- NSIs
-- CRS NSI types by contract type: ACC->CRS01, ETE->CRS02, MTR->CRS03, DNR*->CRS04, PWB->CRS05,
-- WOS->CRS06, WSM->CRS07, FBD*->CRS08. Where the contract type's name is not known the
-- description names the contract type code.
INSERT INTO delius.r_nsi_type (code, description) VALUES
    ('CRS01', 'CRS Accommodation'),
    ('CRS02', 'CRS Education, Training and Employment'),
    ('CRS03', 'CRS MTR'),
    ('CRS04', 'CRS Dependency and Recovery'),
    ('CRS05', 'CRS Personal Wellbeing'),
    ('CRS06', 'CRS Women''s Services'),
    ('CRS07', 'CRS WSM'),
    ('CRS08', 'CRS Finance, Benefit and Debt'),
    ('DTR',   'Duty to Refer');

INSERT INTO delius.r_nsi_status (code, description, contact_type_code) VALUES
    ('INPROG', 'In Progress', 'C091'),
    ('COMP',   'Completed',   'C092'),
    ('INIT',   'Initiated',   NULL);

-- Outcomes by referral end type, then the withdrawal outcomes used instead when the
-- `referral-withdrawal-reason` feature flag is on (the event's withdrawalCode maps to one of
-- them; NSi4 is spelt that way in Delius).
INSERT INTO delius.r_nsi_outcome (code, description) VALUES
    ('CRS01', 'Cancelled'),
    ('CRS02', 'Prematurely Ended'),
    ('CRS03', 'Completed'),
    ('NSI1',  'Ineligible referral'),
    ('NSI2',  'Mistaken referral (inc Duplicate)'),
    ('NSI3',  'Did not start (Work, Caring Commitments, Long-term Sickness)'),
    ('NSi4',  'Started - Not finished (Work,Caring Commitments or Long-Term Sickness)'),
    ('NSI5',  'Did not start – Changed Circumstances'),
    ('NSI6',  'Started - Not finished (Changed Circumstances)'),
    ('NSI7',  'Did not start - Needs met through another route'),
    ('NSI8',  'Started - not finished (Needs met through another route)'),
    ('NSI9',  'Did not start - Sentence Expired'),
    ('NSI10', 'Started - Not finished (Sentence Expired)'),
    ('NSI11', 'Did not start – Disengaged'),
    ('NSI12', 'Started - Not finished (Disengaged)'),
    ('NSI13', 'Completed');

-- ---------------------------------------------------------------- enforcement
INSERT INTO delius.r_enforcement_action (code, description, response_by_period, contact_type_code) VALUES
    ('ROM', 'Refer to Offender Manager', 7, 'AROM');

-- ---------------------------------------------------------------- sentences
-- sentence_type: SC custodial, NC non-custodial. ftc_limit: failures to comply tolerated
-- before an enforcement review (ARWS). Disposal type 326 is excluded from convictions and
-- can never be released.
INSERT INTO delius.r_disposal_type (code, description, sentence_type, ftc_limit) VALUES
    ('SC',  'CJA - Std Determinate Custody',          'SC', 3),
    ('EDS', 'Extended Determinate Sentence',          'SC', 3),
    ('YOI', 'Detention in Young Offender Institution','SC', 3),
    ('ORA', 'ORA Community Order',                    'NC', 2),
    ('SSO', 'ORA Suspended Sentence Order',           'NC', 2),
    ('326', 'Adjournment',                            'NC', NULL);

INSERT INTO delius.r_requirement_main_category (code, description) VALUES
    ('F', 'Rehabilitation Activity Requirement'),
    ('W', 'Unpaid Work');

-- LAP (accredited programme) conditions are not terminated on recall. NLC5 and NLC8 are
-- illustrative standard licence condition categories for seeds (not named by REFERENCE.md).
INSERT INTO delius.r_licence_condition_main_category (code, description) VALUES
    ('LAP',  'Accredited Programme'),
    ('NLC5', 'Residence at a Specific Place'),
    ('NLC8', 'Freedom of Movement');

-- ---------------------------------------------------------------- custody
INSERT INTO delius.r_custodial_status (code, description) VALUES
    ('A',  'Sentenced - In Custody'),
    ('B',  'Released - On Licence'),
    ('C',  'Recalled'),
    ('D',  'In Custody'),
    ('I',  'In Custody - IRC'),
    ('P',  'Post Sentence Supervision'),
    ('R',  'In Custody - ROTL'),
    ('T',  'Terminated'),
    ('AT', 'Auto-Terminated');

INSERT INTO delius.r_custody_event_type (code, description) VALUES
    ('TSC', 'Custodial Status Change'),
    ('CPL', 'Change of Custodial Location');

INSERT INTO delius.r_release_type (code, description) VALUES
    ('ADL',  'Adult Licence'),
    ('ECSL', 'End of Custody Supervised Licence'),
    ('HDC',  'Home Detention Curfew');

-- CHOSEN: the licence-condition termination reason codes (live codes not given by REFERENCE.md).
INSERT INTO delius.r_termination_reason (code, description) VALUES
    ('TREC', 'Recalled'),
    ('THOS', 'Transferred to Secure Hospital'),
    ('TIRC', 'Transferred to Immigration Removal Centre'),
    ('TCOM', 'Completed');

INSERT INTO delius.r_recall_reason (code, description, termination_reason_code) VALUES
    ('NN',   'Notified by Custodial Establishment',    'TREC'),
    ('EOTL', 'End of Temporary Licence',               'TREC'),
    ('TSH',  'Transfer to Secure Hospital',            'THOS'),
    ('IRC',  'Transfer to Immigration Removal Centre', 'TIRC');

INSERT INTO delius.r_key_date_type (code, description) VALUES
    ('POM1', 'POM Handover Start Date'),
    ('POM2', 'POM Handover Date (Responsibility Handover)'),
    ('CRD',  'Conditional Release Date'),
    ('LED',  'Licence Expiry Date'),
    ('SED',  'Sentence Expiry Date');

INSERT INTO delius.r_pom_allocation_reason (code, description) VALUES
    ('AUT', 'Automatic Transfer'),
    ('INA', 'Internal Allocation'),
    ('EXT', 'External Transfer');

-- Reason recorded on a pending licence-condition transfer rejected by a recall.
INSERT INTO delius.r_transfer_reason (code, description) VALUES
    ('TWR', 'Transfer Withdrawn');

-- ---------------------------------------------------------------- special institutions
-- National placeholders used when NOMIS names no Delius establishment. Real prisons (with
-- their NOMIS codes and probation areas) come from seed files.
INSERT INTO delius.r_institution (code, description, nomis_code, immigration_removal_centre, secure_hospital) VALUES
    ('XXX056', 'Other Secure Unit (Hospital)',       NULL, false, true),
    ('XXX054', 'Other Immigration Removal Centre',   NULL, true,  false),
    ('UATLRG', 'Unlawfully at Large',                NULL, false, false),
    ('COMMUN', 'In the Community',                   NULL, false, false),
    ('UNKNOW', 'Unknown',                            NULL, false, false);

-- ---------------------------------------------------------------- CRS provider
-- Every CRS referral NSI and CRS appointment is allocated to this provider / team / staff.
INSERT INTO delius.probation_area (code, description, institution_code, active) VALUES
    ('CRS', 'Commissioned Rehabilitative Services', NULL, true);

INSERT INTO delius.team (code, description, probation_area_code, pdu_code) VALUES
    ('CRSUAT', 'CRS Unallocated Team', 'CRS', NULL);

INSERT INTO delius.staff (code, forename, surname, probation_area_code, team_codes) VALUES
    ('CRSUATU', 'Unallocated', 'Staff', 'CRS', '{CRSUAT}');
