"""XLSForm → XForm (pyxform), lint, and the FormSchema every later step derives from."""

from consult.forms.build import FormSources, build_forms, check_forms
from consult.forms.lint import FormIssue, FormReport, Profile, Severity, check_form
from consult.forms.media import referenced_media
from consult.forms.profiles import FormProfiles, FormsConfigError
from consult.forms.schema import Choice, ChoiceList, DataType, Field, FormSchema, Repeat
from consult.forms.xlsform import CompiledForm, compile_xlsform

__all__ = [
    "Choice", "ChoiceList", "CompiledForm", "DataType", "Field", "FormIssue", "FormProfiles", "FormReport",
    "FormSchema", "FormSources", "FormsConfigError", "Profile", "Repeat", "Severity", "build_forms", "check_form",
    "check_forms", "compile_xlsform", "referenced_media",
]
