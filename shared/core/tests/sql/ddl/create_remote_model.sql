-- reads:
-- writes: p.llm.gemini
CREATE OR REPLACE MODEL llm.gemini REMOTE WITH CONNECTION `us.vertex` OPTIONS (endpoint = 'gemini-2.0-flash')
