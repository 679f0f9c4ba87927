import asyncio

from syno_transform.main import create_app

asyncio.run(create_app().run())
