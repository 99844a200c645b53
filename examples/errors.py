"""Errors as problem+json: raise the family, define your own, document the responses."""

from decimal import Decimal

from fastapi_chassis import (
    ChassisError,
    ChassisSettings,
    ErrorsSettings,
    NotFound,
    build_app,
    problem_responses,
)


class InsufficientFunds(ChassisError):
    status = 402
    code = "insufficient_funds"
    title = "Insufficient funds"


settings = ChassisSettings(
    service_name="payments",
    errors=ErrorsSettings(type_base_url="https://errors.example.com/"),
)
app = build_app(settings)

BALANCES = {"acc-1": Decimal("30.00")}


@app.post("/accounts/{account_id}/payments", responses=problem_responses(402, 404))
async def pay(account_id: str, amount: Decimal) -> dict[str, str]:
    balance = BALANCES.get(account_id)
    if balance is None:
        raise NotFound(f"account {account_id} does not exist", code="account_not_found")
    if amount > balance:
        raise InsufficientFunds(
            f"the payment needs {amount}, the balance is {balance}",
            extra={"balance": str(balance), "needed": str(amount)},
        )
    BALANCES[account_id] = balance - amount
    return {"balance": str(BALANCES[account_id])}
