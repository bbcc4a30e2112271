-- reads: p.app.user_properties, p.app.users
WITH user_properties AS (
  -- Shadows app.user_properties by name, reads it by its full name.
  SELECT user_id,
         JSON_VALUE(props, '$.plan') AS plan,
         JSON_QUERY_ARRAY(props, '$.tags') AS tags
  FROM app.user_properties
)
SELECT u.id, p.plan, tag
FROM app.users AS u
JOIN user_properties AS p ON p.user_id = u.id,
UNNEST(p.tags) AS tag
