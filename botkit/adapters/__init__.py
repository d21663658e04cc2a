"""Ready handlers: the keyword router, OpenAI and Dialogflow."""
