-- reads:
-- writes: p.d.t
ALTER TABLE d.t ADD COLUMN IF NOT EXISTS note STRING
