-- reads: p.ga.events_*, p.ga.users
SELECT * FROM ga.events_* AS e JOIN ga.users AS u ON e.user_id = u.id
