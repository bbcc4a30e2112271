-- reads: p.ml.m
EXPORT MODEL ml.m OPTIONS (uri = 'gs://b/models/m')
