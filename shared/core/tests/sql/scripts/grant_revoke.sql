-- reads:
GRANT `roles/bigquery.dataViewer` ON TABLE d.t TO 'user:a@example.com';
REVOKE `roles/bigquery.dataViewer` ON TABLE d.t FROM 'user:a@example.com';
