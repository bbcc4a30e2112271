-- reads: p.llm.gemini, p.d.prompts
SELECT * FROM ML.GENERATE_TEXT(MODEL llm.gemini, (SELECT prompt FROM d.prompts), STRUCT(0.2 AS temperature))
