"""aiogram routers, one module per audience, assembled in one place."""

from aiogram import Router

from handlers.admin import router as admin_router
from handlers.cases import router as cases_router
from handlers.customer import router as customer_router
from handlers.staff import router as staff_router
from handlers.stats import group_router as stats_group_router


def build_router() -> Router:
    """A fresh router tree per dispatcher: aiogram refuses to attach one router twice."""
    root = Router(name="hearback")
    # Admin and staff first: their commands in private chats come before the customer's
    # catch-alls; the admin router lets only admins' admin commands in.
    root.include_routers(
        admin_router(), staff_router(), stats_group_router(), cases_router(), customer_router()
    )
    return root
