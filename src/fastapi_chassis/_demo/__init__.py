"""Parts of the demo service (`fastapi_chassis.demo`): its settings, accounts and notes."""
