"""The HTTP side of ChartBot: Stripe and Telegram webhooks, health and metrics, served by `chartbot web`."""
