"""Ready bots built from botkit's adapters."""
