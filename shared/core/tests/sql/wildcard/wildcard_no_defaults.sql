-- defaults: none
-- reads: ga.events_*
SELECT * FROM ga.events_*
