-- reads: p.ml.churn_model, p.crm.customers
SELECT * FROM ML.PREDICT(MODEL ml.churn_model, (SELECT * FROM crm.customers))
