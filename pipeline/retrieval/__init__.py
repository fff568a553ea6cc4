"""The retrieval chatbot: a dual encoder that matches an utterance to its reply, and an index of the
corpus's replies it answers from (features, encoder, config, pairs, train, index, bot, lexical)."""
