from syno_forecast.main import create_app
from syno_shared.service import serve

if __name__ == "__main__":  # worker processes of the pool import this module too; only the service serves
    serve(create_app())
