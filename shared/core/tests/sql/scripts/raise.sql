-- reads:
RAISE USING MESSAGE = 'stop';
