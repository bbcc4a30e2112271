-- error: 3:1 Unexpected EOF while in a multi-line comment
SELECT 1 /* no end
