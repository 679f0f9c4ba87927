import asyncio

from syno_ingestion.main import create_app

asyncio.run(create_app().run())
