-- reads:
CREATE ROW ACCESS POLICY us_only ON d.t GRANT TO ('group:us@example.com') FILTER USING (country = 'US')
