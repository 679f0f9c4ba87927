import asyncio

from syno_activation.main import create_app

asyncio.run(create_app().run())
