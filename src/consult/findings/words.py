"""The report's own words in Vietnamese and English; answers and choices take theirs from the FormSchema.

The ISG Office reports to MARD in Vietnamese and to the donor group in English, so every
title, column heading and note exists in both, side by side, where a translator sees both.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .model import Chart, Column, Kind, Lang, Table

GROUPS: dict[str, tuple[str, str]] = {
    "province_consultation": ("Cơ quan cấp tỉnh", "Provincial agencies"),
    "ministry_consultation": ("Bộ, ngành", "Line ministries"),
    "donor_consultation": ("Nhà tài trợ, tổ chức quốc tế, dự án",
                           "Donors, international organisations, projects"),
    "focal_point_registration": ("Đăng ký đầu mối tỉnh thí điểm", "Pilot-province focal-point registrations"),
    "workshop_evaluation": ("Đại biểu hội thảo tập huấn", "Training-workshop delegates"),
}
"""Stakeholder group of each form: who answered it."""

TABLES: dict[str, tuple[str, str, str, str]] = {
    # key: (title vi, title en, sheet vi, sheet en); sheet names at most 31 characters
    "coverage_by_group": ("Số phiếu theo nhóm bên liên quan", "Submissions by stakeholder group", "Theo nhóm",
                          "By group"),
    "coverage_by_province": ("Tham vấn cấp tỉnh theo tỉnh", "Provincial consultations by province",
                             "Theo tỉnh", "By province"),
    "coverage_by_agency": ("Tham vấn cấp tỉnh theo cơ quan", "Provincial consultations by agency",
                           "Theo cơ quan", "By agency"),
    "coverage_by_ministry": ("Tham vấn Bộ, ngành theo Bộ", "Ministry consultations by ministry", "Theo Bộ",
                             "By ministry"),
    "coverage_by_org_type": ("Tham vấn nhà tài trợ theo loại tổ chức",
                             "Donor consultations by organisation type", "Theo loại tổ chức",
                             "By organisation type"),
    "coverage_by_enumerator": ("Số phiếu theo điều tra viên", "Submissions by enumerator",
                               "Theo điều tra viên", "By enumerator"),
    "coverage_by_month": ("Số phiếu theo tháng tham vấn", "Submissions by month of consultation",
                          "Theo tháng", "By month"),
    "interest_distribution": ("Mức độ quan tâm (1–5): phân bố theo nhóm",
                              "Interest (1–5): distribution by group", "Phân bố quan tâm",
                              "Interest distribution"),
    "interest_by_group": ("Mức độ quan tâm trung bình theo nhóm", "Mean interest by group",
                          "Quan tâm theo nhóm", "Interest by group"),
    "willingness": ("Sẵn sàng tham gia (tỉnh) và hỗ trợ (Bộ, ngành)",
                    "Willing to join (provinces) and to support (ministries)", "Sẵn sàng tham gia",
                    "Willingness"),
    "commitment_by_province": ("Cam kết ngày công và kinh phí đối ứng hằng năm theo tỉnh",
                               "Staff-days and counterpart budget committed per year, by province",
                               "Cam kết theo tỉnh", "Commitment by province"),
    "focal_points": ("Thành viên đầu mối các tỉnh thí điểm", "Focal-point members of the pilot provinces",
                     "Đầu mối thí điểm", "Pilot focal points"),
    "topic_ranking": ("Xếp hạng chủ đề đối thoại ưu tiên", "Ranking of priority dialogue topics",
                      "Chủ đề ưu tiên", "Priority topics"),
    "activity_ranking": ("Xếp hạng hoạt động mong muốn (cấp tỉnh)",
                         "Ranking of preferred activities (provinces)", "Hoạt động mong muốn",
                         "Preferred activities"),
    "reasons_not_joining": ("Lý do chưa tham gia", "Reasons for not joining (yet)", "Lý do chưa tham gia",
                            "Reasons not joining"),
    "support_needed": ("Hỗ trợ cần thiết (cấp tỉnh)", "Support needed (provinces)", "Hỗ trợ cần thiết",
                       "Support needed"),
    "open_answers": ("Trả lời tự do về khó khăn và hỗ trợ", "Open answers on constraints and support",
                     "Trả lời tự do", "Open answers"),
    "verbatim": ("Trích nguyên văn các câu trả lời", "Verbatim answers (sample)", "Trích nguyên văn",
                 "Verbatim answers"),
    "donor_support_types": ("Loại hỗ trợ nhà tài trợ có thể cung cấp", "Types of support donors could offer",
                            "Loại hỗ trợ", "Support types"),
    "donor_budgets_by_type": ("Kinh phí dự kiến theo loại tổ chức (nghìn USD)",
                              "Indicative budgets by organisation type (thousand USD)", "Kinh phí theo loại",
                              "Budgets by type"),
    "donor_budgets": ("Kinh phí dự kiến của từng nhà tài trợ (nghìn USD)",
                      "Indicative budget of each donor (thousand USD)", "Kinh phí dự kiến",
                      "Indicative budgets"),
    "donor_province_matrix": ("Nhà tài trợ × tỉnh hoạt động", "Donor × province where active",
                              "Nhà tài trợ × tỉnh", "Donor x province"),
    "cprgs_awareness": ("Hiểu biết về CPRGS theo tỉnh", "CPRGS awareness by province", "Hiểu biết CPRGS",
                        "CPRGS awareness"),
    "mpi_2215_use": ("Sử dụng công văn 2215 BKH/TH cho kế hoạch 2005 theo tỉnh",
                     "Use of MPI letter 2215 BKH/TH for the 2005 plan, by province", "Công văn 2215",
                     "MPI letter 2215"),
    "workshop_delegates": ("Đại biểu theo hội thảo", "Delegates per workshop", "Đại biểu hội thảo",
                           "Workshop delegates"),
    "workshop_delegates_by_province": ("Đại biểu theo hội thảo và tỉnh",
                                       "Delegates per workshop and province", "Đại biểu theo tỉnh",
                                       "Delegates by province"),
    "knowledge_gain": ("Kiến thức tự đánh giá trước và sau hội thảo (1–5)",
                       "Self-rated knowledge before and after the workshop (1–5)", "Kiến thức trước-sau",
                       "Knowledge gain"),
    "session_usefulness": ("Mức độ hữu ích của từng phiên (1–5)", "Usefulness of each session (1–5)",
                           "Hữu ích từng phiên", "Session usefulness"),
    "will_apply": ("Sẽ áp dụng vào công việc", "Will apply it in their work", "Sẽ áp dụng", "Will apply"),
    "focal_point_coverage_by_type": ("Đầu mối đã tham vấn theo loại bên liên quan",
                                     "Focal points consulted, by stakeholder type", "Đầu mối theo loại",
                                     "Focal points by type"),
    "focal_point_coverage_by_province": ("Đầu mối đã tham vấn theo tỉnh", "Focal points consulted, by province",
                                         "Đầu mối theo tỉnh", "Focal points by province"),
    "focal_point_registry": ("Danh sách đầu mối (focal_points)", "The focal-point registry (focal_points)",
                             "Đầu mối", "Focal points"),
    "quality_by_form": ("Phiếu nhận, hợp lệ, cách ly và đã phản hồi",
                        "Received, valid, quarantined and written back", "Chất lượng theo nhóm",
                        "Quality by group"),
    "quarantine_by_rule": ("Phiếu bị cách ly theo quy tắc kiểm tra", "Quarantined submissions by check",
                           "Cách ly theo quy tắc", "Quarantine by check"),
}

RULES: dict[str, tuple[str, str]] = {
    "required": ("Thiếu câu trả lời bắt buộc", "Required answer missing"),
    "required_if_relevant": ("Thiếu câu trả lời bắt buộc (khi câu hỏi được hỏi)",
                             "Required answer missing (where the question was asked)"),
    "other_specified": ("Chọn \"khác\" nhưng không ghi rõ", "\"Other\" chosen but not specified"),
    "choice": ("Câu trả lời không có trong danh sách", "Answer not in the choice list"),
    "choice_token": ("Lựa chọn không có trong danh sách", "Option not in the choice list"),
    "cascading_choice": ("Lựa chọn không khớp câu trả lời trước", "Choice does not match an earlier answer"),
    "range": ("Giá trị ngoài khoảng cho phép", "Value out of range"),
    "date_range": ("Ngày ngoài khoảng cho phép", "Date out of range"),
    "consultation_period": ("Ngày ngoài đợt tham vấn", "Date outside the consultation period"),
    "pattern": ("Sai định dạng", "Wrong format"),
    "min_length": ("Quá ngắn", "Too short"),
    "max_selected": ("Chọn quá nhiều", "Too many options chosen"),
    "exclusive_choice": ("Lựa chọn loại trừ bị kết hợp", "Exclusive option combined with others"),
    "value_type": ("Giá trị sai kiểu dữ liệu", "Value of the wrong type"),
    "members_present": ("Không có thành viên đầu mối", "No focal-point members"),
    "one_lead": ("Không đúng một trưởng nhóm", "Not exactly one lead"),
    "budget_matches_funding": ("Kinh phí không khớp với hỗ trợ tài chính",
                               "Budget does not match the funding offer"),
    "duplicate_interview": ("Phỏng vấn trùng lặp", "Duplicate interview"),
}
"""Every check's name as a reader of the report should see it (the database keeps the rule name)."""

WORDS: dict[str, tuple[str, str]] = {
    "title": ("Đầu mối đối thoại chính sách cấp tỉnh: kết quả tham vấn",
              "Provincial policy-dialogue focal points: consultation findings"),
    "subtitle": ("Văn phòng ISG, Bộ Nông nghiệp và Phát triển nông thôn — chỉ tính các phiếu hợp lệ",
                 "ISG Office, Ministry of Agriculture and Rural Development — valid submissions only"),
    "contents": ("Mục lục", "Contents"),
    "key_figures": ("Số liệu chính", "Key figures"),
    "generated": ("Lập lúc", "Generated"),
    "no_rows": ("Không có dữ liệu", "No data"),
    "more_rows": ("dòng nữa", "more rows"),
    "section.coverage": ("Phạm vi tham vấn", "Coverage"),
    "section.commitment": ("Mức độ quan tâm và cam kết", "Interest and commitment"),
    "section.focal_point_coverage": ("Mức độ tiếp cận đầu mối", "Focal-point coverage"),
    "section.priorities": ("Ưu tiên", "Priorities"),
    "section.constraints": ("Khó khăn và hỗ trợ cần thiết", "Constraints and support needed"),
    "section.donors": ("Nhà tài trợ", "Donors"),
    "section.planning": ("Thực tiễn lập kế hoạch", "Planning practice"),
    "section.workshops": ("Hội thảo tập huấn 2004", "The 2004 training workshops"),
    "section.quality": ("Chất lượng dữ liệu", "Data quality"),
    "yes": ("Có", "Yes"),
    "no": ("Không", "No"),
    "all_groups": ("Tất cả các nhóm", "All groups"),
    "both_workshops": ("Cả hai hội thảo", "Both workshops"),
    "knowledge.cprgs": ("Lập kế hoạch theo CPRGS", "CPRGS-based planning"),
    "knowledge.results": ("Lập kế hoạch dựa vào kết quả", "Results-based planning"),
    "mpi_2215_received": ("Đã nhận công văn", "Received the letter"),
    "verbatim.note": (
        ("Tối đa 10 câu trả lời khác nhau cho mỗi câu hỏi, thường gặp nhất trước; giữ nguyên cách viết "
         "của người trả lời."),
        "At most 10 distinct answers per question, most frequent first, as the respondents wrote them.",
    ),
    "workshop_delegates.note": (
        "Số đại biểu dự kiến theo báo cáo của Văn phòng ISG; số phiếu nhận gồm cả phiếu bị cách ly.",
        "Delegates expected as the ISG Office reported them; evaluations received include quarantined ones.",
    ),
    "donor_province_matrix.note": (
        "Không nhà tài trợ nào cho biết có hoạt động tại {count} tỉnh: {provinces}.",
        "No donor reported activity in {count} provinces: {provinces}.",
    ),
    "office": ("Văn phòng ISG – Bộ Nông nghiệp và Phát triển nông thôn",
               "ISG Office – Ministry of Agriculture and Rural Development"),
    "round": ("Đợt tham vấn: {first} – {last}", "Consultation round: {first} – {last}"),
    "province_count": ("Số tỉnh", "Provinces"),
    "provinces": ("Các tỉnh hoạt động", "Provinces where active"),
    "commitment_by_province.note": (
        ("Chỉ tính cam kết của các cơ quan trả lời \"có\" sẵn sàng tham gia; số ngày công do cơ quan chưa quyết "
         "định hoặc không tham gia ghi được nêu riêng và không cộng vào. Phiếu bị cách ly không được tính."),
        ("Only agencies that answered \"yes\" to joining are counted; staff-days written by undecided or unwilling "
         "agencies are shown apart and not added in. Quarantined submissions are not counted."),
    ),
    "focal_points.note": (
        ("Có phiếu đăng ký bị cách ly (chưa đạt kiểm tra) nên chưa được tính: số thành viên của tỉnh đó có thể "
         "thấp hơn thực tế cho tới khi phiếu được sửa."),
        ("Some registrations were quarantined (they failed a check) and are not counted: that province's members "
         "may read low until the submission is corrected."),
    ),
    "focal_point_coverage.note": (
        ("Đầu mối đã đăng ký: đầu mối hiện có trong danh sách focal_points (không tính đầu mối đã xoá). Đã tham "
         "vấn: được chọn trong ít nhất một phiếu tham vấn hợp lệ (cấp tỉnh, Bộ, ngành hoặc nhà tài trợ), hoặc được "
         "đăng ký mới qua chính phiếu đó (\"không có trong danh sách\"). Phiếu bị cách ly hoặc đã xoá không được "
         "tính; phiếu đánh giá hội thảo không phải là tham vấn nên không được tính. Xung đột: Central đánh dấu "
         "xung đột cập nhật chưa được giải quyết."),
        ("Registered: focal points in the focal_points list now (deleted ones excluded). Consulted: picked in at "
         "least one valid consultation (provincial, ministry or donor), or registered by that consultation itself "
         "(\"not in the list\"). Quarantined and deleted consultations are not counted; workshop evaluations are "
         "not consultations and are not counted. Conflicts: conflicting updates Central flagged and nobody has "
         "resolved yet."),
    ),
    "focal_point_coverage.unlinked": (
        ("Phiếu tham vấn của {forms} không có câu hỏi chọn đầu mối (biểu mẫu triển khai trước khi có danh sách) "
         "nên không được tính cho đầu mối nào."),
        ("Consultations of {forms} have no focal-point question (forms deployed before the registry), so they "
         "count for no focal point."),
    ),
    "focal_point_registry.note": (
        ("Mọi đầu mối hiện có trong danh sách (không tính đầu mối đã xoá); thời gian theo giờ UTC; số lần tham "
         "vấn: số phiếu tham vấn hợp lệ chọn hoặc đăng ký đầu mối này."),
        ("Every focal point in the list now (deleted ones excluded); times in UTC; consultations: valid "
         "consultations that picked or registered this focal point."),
    ),
    "mpi_2215_use.note": (
        "Không cơ quan nào được tham vấn ở {count} tỉnh cho biết đã nhận công văn, nên không liệt kê: {provinces}.",
        "In {count} provinces no agency consulted had received the letter, so they are not listed: {provinces}.",
    ),
    "quality_by_form.note": (
        ("Phiếu nhận: phiếu hiện có trên Central (không tính phiếu đã xoá). Đã phản hồi: phiếu được đánh dấu "
         "\"có vấn đề\" trên Central kèm lý do."),
        ("Received: submissions Central still holds (deleted ones excluded). Written back: marked "
         "\"has issues\" in Central with the reasons."),
    ),
    # column headings
    "group": ("Nhóm", "Group"),
    "submissions": ("Số phiếu", "Submissions"),
    "first": ("Ngày đầu tiên", "First date"),
    "last": ("Ngày cuối cùng", "Last date"),
    "province": ("Tỉnh", "Province"),
    "pilot": ("Tỉnh thí điểm", "Pilot province"),
    "agencies": ("Số cơ quan", "Agencies"),
    "enumerator": ("Điều tra viên", "Enumerator"),
    "month": ("Tháng", "Month"),
    "total": ("Tổng", "Total"),
    "respondents": ("Số người trả lời", "Respondents"),
    "mean_interest": ("Điểm quan tâm trung bình", "Mean interest"),
    "interested": ("Tỷ lệ quan tâm (4–5)", "Share interested (4–5)"),
    "willing": ("Tỷ lệ sẵn sàng", "Share willing"),
    "willing_count": ("Số cơ quan sẵn sàng tham gia", "Agencies willing to join"),
    "staff_days": ("Ngày công/năm", "Staff-days per year"),
    "budget_mvnd": ("Kinh phí đối ứng/năm (triệu đồng)", "Counterpart budget per year (million VND)"),
    "members": ("Số thành viên", "Members"),
    "women": ("Số thành viên nữ", "Women"),
    "lead": ("Trưởng nhóm đầu mối", "Lead"),
    "lead_agency": ("Cơ quan của trưởng nhóm", "Lead's agency"),
    "rank": ("Hạng", "Rank"),
    "share": ("Tỷ lệ", "Share"),
    "question": ("Câu hỏi", "Question"),
    "answered": ("Số người trả lời câu này", "Answered"),
    "answer": ("Câu trả lời", "Answer"),
    "times": ("Số lần", "Times given"),
    "donors": ("Số nhà tài trợ", "Donors"),
    "funding": ("Số nhà tài trợ cấp kinh phí", "Offering funding"),
    "budget_total": ("Tổng kinh phí dự kiến (nghìn USD)", "Total indicative budget (thousand USD)"),
    "budget_mean": ("Kinh phí dự kiến trung bình (nghìn USD)", "Mean indicative budget (thousand USD)"),
    "well_share": ("Tỷ lệ hiểu rõ", "Share well informed"),
    "received": ("Số phiếu nhận", "Received"),
    "used_share": ("Tỷ lệ đã sử dụng (trong số đã nhận)", "Share used (of those received)"),
    "workshop": ("Hội thảo", "Workshop"),
    "expected": ("Số đại biểu dự kiến", "Delegates expected"),
    "valid": ("Hợp lệ", "Valid"),
    "quarantined": ("Bị cách ly", "Quarantined"),
    "quarantined_not_counted": ("Bị cách ly, không tính", "Quarantined, not counted"),
    "staff_days_willing": ("Ngày công/năm (cơ quan sẵn sàng tham gia)", "Staff-days per year (agencies willing to join)"),
    "budget_mvnd_willing": ("Kinh phí đối ứng/năm, triệu đồng (cơ quan sẵn sàng tham gia)",
                            "Counterpart budget per year, million VND (agencies willing to join)"),
    "staff_days_not_willing": ("Ngày công/năm ghi bởi cơ quan chưa quyết định hoặc không tham gia (không tính)",
                               "Staff-days per year written by undecided or unwilling agencies (not counted)"),
    "delegates": ("Số đại biểu", "Delegates"),
    "topic": ("Chủ đề", "Topic"),
    "before": ("Trước (trung bình)", "Before (mean)"),
    "after": ("Sau (trung bình)", "After (mean)"),
    "gain": ("Mức tăng trung bình", "Mean gain"),
    "gain_sd": ("Độ lệch chuẩn của mức tăng", "Standard deviation of the gain"),
    "improved": ("Tỷ lệ tiến bộ", "Share improved"),
    "session": ("Phiên", "Session"),
    "mean_usefulness": ("Điểm hữu ích trung bình", "Mean usefulness"),
    "useful": ("Tỷ lệ thấy hữu ích (4–5)", "Share finding it useful (4–5)"),
    "applying": ("Số người sẽ áp dụng", "Will apply"),
    "applying_share": ("Tỷ lệ sẽ áp dụng", "Share who will apply"),
    "written_back": ("Đã phản hồi lên Central", "Written back to Central"),
    "deleted": ("Đã xoá", "Deleted"),
    "rule": ("Quy tắc kiểm tra", "Check"),
    "failures": ("Số lỗi", "Failures"),
    "example": ("Ví dụ thông báo", "Example message"),
    "stakeholder_type": ("Loại bên liên quan", "Stakeholder type"),
    "focal.registered": ("Đầu mối đã đăng ký", "Registered focal points"),
    "focal.consulted": ("Đã tham vấn", "Consulted"),
    "focal.never_consulted": ("Chưa từng tham vấn", "Never consulted"),
    "focal.conflicts": ("Xung đột chưa giải quyết", "Open conflicts"),
    "focal.national": ("Cấp trung ương (không thuộc tỉnh)", "National (no province)"),
    "focal.type_not_given": ("Chưa ghi loại", "Type not given"),
    "focal.label": ("Tên hiển thị", "Label"),
    "focal.full_name": ("Họ và tên", "Full name"),
    "focal.province": ("Tỉnh", "Province"),
    "focal.stakeholder_type": ("Loại bên liên quan", "Stakeholder type"),
    "focal.agency": ("Cơ quan, tổ chức", "Agency or organisation"),
    "focal.position": ("Chức vụ", "Position"),
    "focal.phone": ("Số điện thoại", "Phone"),
    "focal.version": ("Phiên bản", "Version"),
    "focal.conflict": ("Xung đột", "Conflict"),
    "focal.created_at": ("Ngày tạo (UTC)", "Created (UTC)"),
    "focal.updated_at": ("Ngày cập nhật (UTC)", "Updated (UTC)"),
    "focal.consultations": ("Số lần tham vấn", "Consultations"),
    "focal.uuid": ("Mã đầu mối (uuid)", "Entity id (uuid)"),
    # key figures
    "headline.consultations": ("Lượt tham vấn hợp lệ (tỉnh, Bộ, nhà tài trợ)",
                               "Valid consultations (provinces, ministries, donors)"),
    "headline.provinces": ("Số tỉnh được tham vấn", "Provinces consulted"),
    "headline.focal_points": ("Tỉnh thí điểm đã đăng ký đầu mối",
                              "Pilot provinces with a registered focal point"),
    "headline.focal_consulted": ("Đầu mối trong danh sách đã được tham vấn",
                                 "Registered focal points consulted"),
    "headline.focal_never_consulted": ("Đầu mối trong danh sách chưa từng được tham vấn",
                                       "Registered focal points never consulted"),
    "headline.mean_interest": ("Mức độ quan tâm trung bình (1–5)", "Mean interest (1–5)"),
    "headline.willing": ("Tỷ lệ cơ quan cấp tỉnh sẵn sàng tham gia",
                         "Share of provincial agencies willing to join"),
    "headline.staff_days": ("Ngày công/năm do các cơ quan sẵn sàng tham gia cam kết",
                            "Staff-days per year offered by agencies willing to join"),
    "headline.budget_mvnd": ("Kinh phí đối ứng/năm do các cơ quan sẵn sàng tham gia cam kết (triệu đồng)",
                             "Counterpart budget per year offered by agencies willing to join (million VND)"),
    "headline.donor_budget": ("Kinh phí dự kiến của nhà tài trợ (nghìn USD)",
                              "Donors' indicative budgets (thousand USD)"),
    "headline.delegates": ("Phiếu đánh giá hội thảo hợp lệ", "Valid workshop evaluations"),
    "headline.knowledge_gain": ("Mức tăng kiến thức lập kế hoạch theo CPRGS (điểm)",
                                "Gain in CPRGS-planning knowledge (points)"),
    "headline.quarantined": ("Phiếu bị cách ly", "Quarantined submissions"),
    # the automatic section of any other form (summary.py)
    "summary.title": ("Báo cáo tổng hợp dữ liệu thu thập", "Summary report of the collected data"),
    "summary.subtitle": ("Tổng hợp tự động theo từng câu hỏi — chỉ tính các phiếu hợp lệ",
                         "Automatic summary, question by question — valid submissions only"),
    "summary.overview": ("Số phiếu", "Submissions"),
    "summary.overview.note": (
        "Chỉ tính {valid} phiếu hợp lệ; {quarantined} phiếu bị cách ly không được tính.",
        "Only the {valid} valid submissions are counted; {quarantined} quarantined ones are left out."),
    "summary.repeats": ("Nhóm lặp: số mục mỗi phiếu", "Repeats: entries per submission"),
    "summary.numbers": ("Câu hỏi dạng số", "Number questions"),
    "summary.distribution": ("phân bố", "distribution"),
    "summary.by_week": ("theo tuần", "by week"),
    "summary.text": ("Câu hỏi trả lời tự do", "Free-text questions"),
    "summary.verbatim": ("Một số câu trả lời nguyên văn", "Some verbatim answers"),
    "summary.verbatim.note": ("Tối đa {n} câu trả lời khác nhau cho mỗi câu hỏi, thường gặp nhất trước; "
                              "câu trả lời dài hơn {cut} ký tự được cắt bớt. Câu trả lời lưu vào danh sách thực thể "
                              "(thông tin liên hệ trong sổ đăng ký) chỉ được đếm, không trích dẫn.",
                              "At most {n} distinct answers per question, most frequent first; "
                              "answers longer than {cut} characters are cut. Answers saved to an entity list "
                              "(contacts of a registry) are counted, never quoted."),
    "summary.locations": ("Câu hỏi vị trí", "Location questions"),
    "summary.other": ("Câu hỏi khác (giờ, tệp đính kèm)", "Other questions (times, files)"),
    "summary.per_entry": ("Tính theo từng mục của nhóm lặp “{repeat}”.",
                          "Counted per entry of the repeat “{repeat}”."),
    "summary.answered_of": ("{answered} trên {total} {unit} trả lời câu này.",
                            "{answered} of {total} {unit} answered this question."),
    "summary.unit.submissions": ("phiếu", "submissions"),
    "summary.unit.entries": ("mục", "entries"),
    "summary.multiple.note": ("Có thể chọn nhiều đáp án: tổng các tỷ lệ có thể vượt 100 %.",
                              "Several choices allowed: the shares can add up to more than 100%."),
    "summary.line": ("{valid} phiếu hợp lệ, {quarantined} phiếu bị cách ly, {questions} câu hỏi được "
                     "tổng hợp (chi tiết trong báo cáo HTML và bảng tính Excel).",
                     "{valid} valid and {quarantined} quarantined submissions, {questions} questions "
                     "summarised (details in the HTML report and the Excel workbook)."),
    "summary.skipped": ("Biểu mẫu không thể tổng hợp", "Forms that could not be summarised"),
    "summary.no_schema": ("không có FormSchema của biểu mẫu này trong thư mục build: "
                          "hãy chạy `consult forms build`",
                          "no FormSchema for this form in the build directory: run `consult forms build`"),
    "summary.no_tables": ("các bảng của biểu mẫu không có trong cơ sở dữ liệu: hãy chạy `consult sync`",
                          "the form's tables are not in the database: run `consult sync`"),
    "summary.failed": ("lỗi khi tổng hợp: {error}", "failed while summarising: {error}"),
    "form": ("Biểu mẫu", "Form"),
    "reason": ("Lý do", "Reason"),
    "choice": ("Lựa chọn", "Choice"),
    "answers": ("Số câu trả lời", "Answers"),
    "distinct": ("Số câu trả lời khác nhau", "Distinct answers"),
    "minimum": ("Nhỏ nhất", "Minimum"),
    "median": ("Trung vị", "Median"),
    "mean": ("Trung bình", "Mean"),
    "maximum": ("Lớn nhất", "Maximum"),
    "bin": ("Khoảng giá trị", "Range of values"),
    "week": ("Tuần bắt đầu ngày", "Week starting"),
    "repeat": ("Nhóm lặp", "Repeat"),
    "with_entries": ("Số phiếu có mục", "Submissions with entries"),
    "entries": ("Tổng số mục", "Entries"),
    "with_coordinates": ("Số câu trả lời có toạ độ", "Answers with coordinates"),
    "headline.forms": ("Biểu mẫu được tổng hợp", "Forms summarised"),
    "headline.valid": ("Phiếu hợp lệ", "Valid submissions"),
    "headline.unsummarised": ("Biểu mẫu không thể tổng hợp", "Forms that could not be summarised"),
}


class Words:
    """The report's vocabulary in one language."""

    def __init__(self, lang: Lang):
        if lang not in ("vi", "en"):
            raise ValueError(f"unknown report language {lang!r}: use vi or en")
        self.lang: Lang = lang
        self._index = 0 if lang == "vi" else 1

    def __call__(self, key: str) -> str:
        return WORDS[key][self._index]

    def group(self, form_id: str) -> str:
        return GROUPS[form_id][self._index] if form_id in GROUPS else form_id

    def rule(self, name: str) -> str:
        """A check's name for people; a rule this table does not know yet keeps its own name."""
        return RULES[name][self._index] if name in RULES else name

    def yes_no(self, value: bool) -> str:
        return self("yes" if value else "no")

    def column(self, key: str, kind: Kind = Kind.COUNT, label: str | None = None) -> Column:
        """A column headed by `label` (from the FormSchema), else by the report's word for `key`."""
        return Column(key, label if label is not None else self(key), kind)

    def table(self, key: str, columns: Sequence[Column], frame: pd.DataFrame, chart: Chart | None = None,
              note: str | None = None, drawn: Sequence[Column] = ()) -> Table:
        missing = [c.key for c in (*columns, *drawn) if c.key not in frame.columns]
        if missing:
            raise ValueError(f"table {key} lacks the columns {missing}")
        title_vi, title_en, sheet_vi, sheet_en = TABLES[key]
        title, sheet = (title_vi, sheet_vi) if self.lang == "vi" else (title_en, sheet_en)
        shown = frame[[c.key for c in (*columns, *drawn)]].reset_index(drop=True)
        return Table(key, title, sheet, tuple(columns), shown, chart, note, tuple(drawn))
