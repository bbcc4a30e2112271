-- error: 2:10 comment is never closed
SELECT 1 /* no end
