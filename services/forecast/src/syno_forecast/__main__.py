import asyncio

from syno_forecast.main import create_app

asyncio.run(create_app().run())
