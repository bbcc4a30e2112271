-- error: 1:1 no SQL statement
-- nothing here
/* or here */
