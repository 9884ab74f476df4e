"""The tab REST API: serializers (wire shapes), views (thin), urls."""
