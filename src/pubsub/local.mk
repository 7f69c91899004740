# pubsub module: topic names and filters, subscription matching (pure; DESIGN section 6).
