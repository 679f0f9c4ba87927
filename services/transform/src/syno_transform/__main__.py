from syno_shared.service import serve
from syno_transform.main import create_app

serve(create_app())
