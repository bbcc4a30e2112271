-- reads:
SELECT * FROM EXTERNAL_QUERY('acme.us.pg', '''SELECT id, name FROM public.customers''')
