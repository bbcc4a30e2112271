-- reads: acme-web.analytics_301.events_*
-- Sessions per day from the GA4 export.
WITH events AS (
  SELECT
    PARSE_DATE('%Y%m%d', event_date) AS day,
    user_pseudo_id,
    (SELECT value.int_value FROM UNNEST(event_params) WHERE key = 'ga_session_id') AS session_id,
    (SELECT value.string_value FROM UNNEST(event_params) WHERE key = 'page_location') AS page,
    event_name,
    TIMESTAMP_MICROS(event_timestamp) AS ts
  FROM `acme-web.analytics_301.events_*`
  WHERE _TABLE_SUFFIX BETWEEN FORMAT_DATE('%Y%m%d', DATE_SUB(@run_date, INTERVAL 3 DAY))
                          AND FORMAT_DATE('%Y%m%d', @run_date)
),
sessions AS (
  SELECT day, user_pseudo_id, session_id,
         MIN(ts) AS started_at, MAX(ts) AS ended_at,
         COUNTIF(event_name = 'page_view') AS page_views,
         ARRAY_AGG(page IGNORE NULLS ORDER BY ts LIMIT 1)[SAFE_OFFSET(0)] AS landing_page
  FROM events
  GROUP BY day, user_pseudo_id, session_id
)
SELECT * FROM sessions
QUALIFY ROW_NUMBER() OVER (PARTITION BY user_pseudo_id, session_id ORDER BY started_at) = 1
