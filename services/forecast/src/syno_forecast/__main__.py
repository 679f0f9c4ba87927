from syno_forecast.main import create_app
from syno_shared.service import serve

serve(create_app())
