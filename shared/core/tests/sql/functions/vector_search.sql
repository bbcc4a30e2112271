-- reads: p.d.docs, p.d.queries
SELECT * FROM VECTOR_SEARCH(TABLE d.docs, 'embedding', (SELECT embedding FROM d.queries), top_k => 5)
