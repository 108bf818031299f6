"""aiogram routers, one module per audience, assembled in one place."""

from aiogram import Router

from handlers.customer import router as customer_router


def build_router() -> Router:
    """A fresh router tree per dispatcher: aiogram refuses to attach one router twice."""
    root = Router(name="hearback")
    root.include_routers(customer_router())
    return root
