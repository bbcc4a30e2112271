-- reads: p.crm.features, p.ml.churn
-- writes: p.ml.churn, p.crm.churn_scores
CREATE OR REPLACE MODEL ml.churn
OPTIONS (model_type = 'boosted_tree_classifier', input_label_cols = ['churned'])
AS SELECT * EXCEPT (customer_id) FROM crm.features WHERE split = 'train';

SELECT * FROM ML.EVALUATE(MODEL ml.churn, (SELECT * FROM crm.features WHERE split = 'test'));

CREATE OR REPLACE TABLE crm.churn_scores AS
SELECT customer_id, predicted_churned_probs
FROM ML.PREDICT(MODEL ml.churn, (SELECT * FROM crm.features WHERE split = 'score'));
